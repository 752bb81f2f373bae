"""Content sharing in real Chromium through the real server: the chair (host point) clicks
"Chia sẻ màn hình" (Chromium's getDisplayMedia, auto-accepted by --use-fake-ui-for-media-stream,
gives a 1280x720 fake screen), the district's room page (its delegate, logged in at the hall
point) shows the screen on its main view (its main slot's
rendition is ``screen`` and frames are decoded), the chair stops and the hall's main view
returns to the host's camera. Then the floor-holder path: the hall may share only once it holds
the floor, the chair lays the share out beside the speaker, and the chair's content view shows
it. The host's camera also reaches the hall in HD (``camera-hd``) on this loopback link."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meetings.models import Principal
from tests.conftest import PASSWORD, make_config
from tests.e2e.test_browser_media import (
    PROVINCE,
    frames,
    seed,
    wait_frames,
    wait_text,
    wait_until,
    watch_errors,
)
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path, **{"media.host_addresses": "127.0.0.1"}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def slot(page: Any, role: str) -> dict[str, Any]:
    """The latest media.slots entry of the page's ``role`` slot (main, content)."""
    return page.evaluate(  # type: ignore[no-any-return]
        "(role) => window.diemcauVideo.client.lastSlots.find(s => s.slotRole === role) || {}", role)


def hd_sending(page: Any) -> bool:
    """Whether the page's camera-hd m-line carries its camera now."""
    return bool(page.evaluate("""() => {
        const slot = window.diemcauVideo.client.slots.find(s => s.role === "camera-hd");
        return !!(slot && slot.transceiver.sender.track);
    }"""))


def video_size(page: Any, selector: str) -> list[int]:
    return page.evaluate(  # type: ignore[no-any-return]
        "(sel) => [document.querySelector(sel).videoWidth, document.querySelector(sel).videoHeight]", selector)


def wait_slot(page: Any, role: str, what: str, check: Callable[[dict[str, Any]], bool],
              timeout_s: float = 20.0) -> dict[str, Any]:
    wait_until(lambda: check(slot(page, role)), f"{what}: {slot(page, role)}", timeout_s)
    return slot(page, role)


def test_share_screen_on_the_main_screen_then_beside_the_speaker(
        media_server: LiveServer, browser_context: Callable[..., Any]) -> None:
    server = media_server
    seeded = seed(server)
    # The district's delegate opens the point's room page (logged in at the hall point).
    server.call(server.services.accounts.create_user(
        "daibieu", PASSWORD, "delegate", display_name="Lò Văn Minh", point_code="H1701"))
    hall = browser_context().pages[0]
    hall_errors = watch_errors(hall)
    hall.goto(f"{server.url}/login?next=/meetings/{seeded.meeting_id}/room")
    hall.fill("#username", "daibieu")
    hall.fill("#password", PASSWORD)
    hall.click("#login-form button[type=submit]")
    hall.wait_for_url(f"{server.url}/meetings/{seeded.meeting_id}/room")
    chair = browser_context().pages[0]
    chair_errors = watch_errors(chair)
    chair.goto(f"{server.url}/login?next=/meetings/{seeded.meeting_id}/video")
    chair.fill("#username", "chutri")
    chair.fill("#password", PASSWORD)
    chair.click("#login-form button[type=submit]")
    chair.wait_for_url(f"{server.url}/meetings/{seeded.meeting_id}/video")
    for page in (hall, chair):
        page.wait_for_selector("#video-state[data-state=connected]", timeout=20_000)
    wait_text(hall, "#video-main-label", PROVINCE)
    wait_frames(hall, "main", 10)
    before = slot(hall, "main")
    assert before["point_code"] == "T17" and before["rendition"] in ("camera", "camera-hd")
    # the host's camera is captured at 1280x720 and earns HD on this good link
    wait_slot(hall, "main", "the hall receives the host in HD",
              lambda s: s.get("rendition") == "camera-hd", timeout_s=30)
    wait_until(lambda: video_size(hall, "#video-main")[1] >= 540,
               f"the hall's main video is HD ({video_size(hall, '#video-main')})", timeout_s=20)
    print("\nhall main video", hall.evaluate(
        "[document.querySelector('#video-main').videoWidth, document.querySelector('#video-main').videoHeight]"))

    # camera-hd carries a track only at the point on the main screen (no bandwidth elsewhere)
    assert hd_sending(chair) and not hd_sending(hall)

    # The hall may not share (no floor); the chair (staff) may.
    assert not hall.is_visible("#video-share")
    assert chair.is_visible("#video-share")
    chair.click("#video-share")
    wait_until(lambda: chair.get_attribute("#video-share", "aria-pressed") == "true", "the chair shares")
    main = wait_slot(hall, "main", "the hall's main slot carries the screen",
                     lambda s: s.get("rendition") == "screen")
    assert main["point_code"] == "T17"
    assert "chia sẻ màn hình" in hall.inner_text("#video-main-reason")
    shared = frames(hall)["main"]
    wait_frames(hall, "main", shared + 15)
    wait_until(lambda: hall.evaluate("document.querySelector('#video-main').dataset.rendition") == "screen",
               "the hall's main view is marked as the screen")
    assert chair.get_attribute("#video-main", "data-self") == "true"  # the sharer sees its own screen
    screenshot(hall, "share-hall-main-screen")

    # The chair stops: the hall's main view returns to the host's camera.
    chair.click("#video-share")
    back = wait_slot(hall, "main", "the hall's main slot is the host's camera again",
                     lambda s: s.get("rendition") in ("camera", "camera-hd"))
    assert back["point_code"] == "T17"
    wait_text(hall, "#video-main-label", PROVINCE)
    again = frames(hall)["main"]
    wait_frames(hall, "main", again + 15)
    assert chair.evaluate("window.diemcauVideo.client.screenTrack") is None

    # The floor-holder path: the chair gives the hall the floor; its button appears.
    async def grant() -> None:
        user = await server.services.accounts.by_username("chutri")
        await server.services.floor.grant(seeded.meeting_id, Principal("user", user=user),
                                          point_code="H1701")

    server.call(grant())
    hall.wait_for_selector("#video-share:not([hidden])", timeout=15_000)
    wait_until(lambda: hd_sending(hall) and not hd_sending(chair), "HD follows the main screen")
    chair.select_option("#video-share-layout", "beside")
    wait_until(lambda: chair.evaluate("window.diemcauVideo.share().layout") == "beside", "layout beside")
    hall.click("#video-share")
    content = wait_slot(chair, "content", "the chair's content slot carries the hall's screen",
                        lambda s: s.get("rendition") == "screen")
    assert content["point_code"] == "H1701"
    assert slot(chair, "main")["point_code"] == "H1701"  # the speaker stays on the main screen
    assert slot(chair, "main")["rendition"] != "screen"
    wait_frames(chair, "content0", 15)
    assert chair.is_visible("#video-content")
    screenshot(chair, "share-chair-beside")
    # The chair stops the hall's share from its console.
    chair.click("#video-share-stop")
    wait_slot(chair, "content", "the content slot empties", lambda s: not s.get("rendition"))
    wait_until(lambda: hall.evaluate("window.diemcauVideo.client.screenTrack") is None,
               "the hall stops sending its screen")
    assert not [e for e in chair_errors + hall_errors if "pageerror" in e], chair_errors + hall_errors
    print(f"\nshare test done at {time.strftime('%H:%M:%S')}; hall {frames(hall)}, chair {frames(chair)}")
