"""Video through the real server in real Chromium (fake camera and mic): the chair (logged in,
at the province point) and a district hall PC (its invitation link) join one meeting, each in
its own browser; each decodes the other's video through the SFU (getStats framesDecoded
grows); the chair puts the district on the main screen and both main views switch; after a
network drop (WebSocket closed and the peer gone) the hall PC's media comes back by itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.models import MeetingState
from tests.conftest import PASSWORD, make_config
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Hội nghị giao ban trực tuyến tháng 11"
DISTRICT = "Huyện Tân Lạc"
PROVINCE = "Tỉnh Hòa Bình"


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path, **{"media.host_addresses": "127.0.0.1"}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Seeded:
    meeting_id: int
    link: str


def seed(server: LiveServer) -> Seeded:
    s = server.services

    async def run() -> Seeded:
        await s.registry.create("T17", PROVINCE, "province")
        await s.registry.create("H1701", DISTRICT, "district", "T17")
        await s.accounts.create_user("chutri", PASSWORD, "chair", display_name="Nguyễn Văn Hùng", point_code="T17")
        meeting = await s.calendar.create(MeetingDraft(
            title=TITLE, starts_at=utcnow() - timedelta(minutes=5), ends_at=utcnow() + timedelta(hours=2),
            host_point_code="T17", chair_username="chutri"), created_by=None)
        result = await s.calendar.invite(meeting.id, InviteSelection(codes=("T17", "H1701")))
        await s.calendar.set_state(meeting.id, MeetingState.OPEN)
        return Seeded(meeting.id, result.links["H1701"])

    return server.call(run())


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors


def frames(page: Any) -> dict[str, int]:
    return page.evaluate("window.diemcauVideo.client.framesDecoded()")  # type: ignore[no-any-return]


def wait_frames(page: Any, slot: str, more_than: int = 0, timeout_s: float = 20.0) -> int:
    """Wait until ``slot`` has decoded more than ``more_than`` frames (and keeps decoding)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        seen = frames(page)
        if seen.get(slot, 0) > more_than:
            return seen[slot]
        time.sleep(0.25)
    raise AssertionError(f"{slot}: no frames decoded beyond {more_than} in {timeout_s}s: {seen}")


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out: {what}")


def wait_text(page: Any, selector: str, text: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen = page.inner_text(selector)
        if seen == text:
            return
        time.sleep(0.2)
    raise AssertionError(f"{selector} shows {seen!r}, not {text!r}, after {timeout_s}s")


def test_two_points_see_each_other_and_the_chair_sets_the_main_screen(
        media_server: LiveServer, browser_context: Callable[..., Any]) -> None:
    server = media_server
    seeded = seed(server)

    # The district hall PC opens its invitation link's room (token auth, no login).
    hall = browser_context().pages[0]
    hall_errors = watch_errors(hall)
    hall.goto(f"{server.url}/join/{seeded.link.rsplit('/join/', 1)[-1]}/room")
    # The chair logs in and opens the meeting's video room.
    chair = browser_context().pages[0]
    chair_errors = watch_errors(chair)
    chair.goto(f"{server.url}/login?next=/meetings/{seeded.meeting_id}/video")
    chair.fill("#username", "chutri")
    chair.fill("#password", PASSWORD)
    chair.click("#login-form button[type=submit]")
    chair.wait_for_url(f"{server.url}/meetings/{seeded.meeting_id}/video")

    for page in (hall, chair):
        page.wait_for_selector("#video-state[data-state=connected]", timeout=20_000)

    # The hall sees the host point (the chair's camera) on its main screen, decoding.
    wait_text(hall, "#video-main-label", PROVINCE)
    started = time.monotonic()
    first = wait_frames(hall, "main")
    wait_frames(hall, "main", first + 10)
    # The chair's grid shows the district (a tile with its label), decoding.
    tile = chair.locator(".video-tile[data-point-code=H1701]")
    tile.wait_for(state="visible", timeout=15_000)
    assert DISTRICT in tile.inner_text()
    index = chair.evaluate("[...document.querySelectorAll('.video-tile')].findIndex(t => t.dataset.pointCode === 'H1701')")
    first_grid = wait_frames(chair, f"grid{index}")
    wait_frames(chair, f"grid{index}", first_grid + 10)
    print(f"\nboth pages decoding 10+ frames {time.monotonic() - started:.1f}s after connecting: hall {frames(hall)}, chair {frames(chair)}")
    # Audio: the hall hears the main-screen point's microphone (the chair's) in an audio slot.
    wait_until(lambda: max(hall.evaluate("window.diemcauVideo.client.audioPackets()").values()) > 50,
               "the hall receives the chair's audio")
    screenshot(chair, "media-chair-grid")
    screenshot(hall, "media-hall-main-province")

    # Mic and camera toggles: the local tracks stop (nothing is sent), and come back.
    chair.click("#video-cam-toggle")
    assert chair.get_attribute("#video-cam-toggle", "aria-pressed") == "false"
    assert chair.is_visible("#video-self-off")
    chair.click("#video-mic-toggle")
    assert chair.evaluate("[window.diemcauVideo.client.videoTrack.enabled, window.diemcauVideo.client.audioTrack.enabled]") == [False, False]
    chair.click("#video-cam-toggle")
    chair.click("#video-mic-toggle")
    assert chair.evaluate("[window.diemcauVideo.client.videoTrack.enabled, window.diemcauVideo.client.audioTrack.enabled]") == [True, True]
    assert not chair.is_visible("#video-self-off")
    # Another microphone: the sender gets the new track, the choice is remembered.
    mics = chair.eval_on_selector_all("#video-mic option", "os => os.map(o => o.value)")
    if len(mics) > 1:
        chair.select_option("#video-mic", mics[1])
        wait_until(lambda: chair.evaluate("window.diemcauVideo.client.audioTrack.getSettings().deviceId") == mics[1],
                   "the second microphone is in use")
        assert chair.evaluate("localStorage.getItem('diemcau.media.mic')") == mics[1]
        sender_track = chair.evaluate("""() => window.diemcauVideo.client.slots.find(s => s.role === 'mic')
                                          .transceiver.sender.track.getSettings().deviceId""")
        assert sender_track == mics[1]

    # Only the WebSocket drops: it resumes its session and the live peer is kept (no re-offer).
    hall.evaluate("window.__peer = window.diemcauVideo.client.pc; window.diemcauVideo.socket.ws.close(4000, 'blip')")
    wait_until(lambda: hall.evaluate("window.diemcauVideo.socket.isLive() && window.diemcauVideo.socket.resumeToken !== null"),
               "the hall's socket is back", timeout_s=15)
    assert hall.evaluate("window.diemcauVideo.client.pc === window.__peer")
    kept = frames(hall)["main"]
    wait_frames(hall, "main", kept + 10)

    # A network drop on the hall PC: its WebSocket closes and its peer dies with it. The socket
    # resumes, the dead peer is replaced (media.leave + a fresh offer) and video flows again.
    hall.evaluate("""() => {
        const v = window.diemcauVideo;
        v.client.pc.close();
        v.socket.ws.close(4000, "test drop");
    }""")
    hall.wait_for_selector("#video-state:not([data-state=connected])", timeout=5_000)
    dropped = time.monotonic()
    hall.wait_for_selector("#video-state[data-state=connected]", timeout=30_000)
    wait_frames(hall, "main", 10, timeout_s=20)  # the new peer's counters start from 0
    print(f"media back {time.monotonic() - dropped:.1f}s after the drop")
    again = frames(chair)[f"grid{index}"]
    wait_frames(chair, f"grid{index}", again + 10, timeout_s=20)  # the hall's new camera source
    screenshot(hall, "media-hall-after-drop")

    # The chair puts the district on the main screen: both main views switch to it; the hall
    # (never sent its own video) shows its own camera there.
    tile.locator(".video-set-main").click()
    wait_text(chair, "#video-main-label", DISTRICT)
    wait_text(hall, "#video-main-label", DISTRICT)
    assert chair.get_attribute("#video-main", "data-point-code") == "H1701"
    wait_until(lambda: tile.locator(".video-set-main").is_disabled(), "the district's button is disabled on the main screen")
    assert hall.get_attribute("#video-main", "data-self") == "true"
    assert "chủ trì" in hall.inner_text("#video-main-reason")
    before = frames(chair).get("main", 0)
    wait_frames(chair, "main", before + 10)
    screenshot(chair, "media-chair-main-district")
    screenshot(hall, "media-hall-main-self")

    print("console:", chair_errors + hall_errors)
    assert not [e for e in chair_errors + hall_errors if "pageerror" in e], chair_errors + hall_errors
