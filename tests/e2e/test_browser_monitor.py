"""The monitoring page in real Chromium against a real server: the chair opens it from the
console, a real headless bridge point (``diemcau bridge`` as a subprocess) joins by its
invitation link and publishes a synthetic camera, and the page shows it online with its link
figures from the server's ``media.stats``; the other invited points stay offline."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from media.aiortc_hooks import use_host_addresses
from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.models import MeetingState
from tests.conftest import PASSWORD, REPO
from tests.e2e.test_browser_pages import log_in, watch_errors
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Hội nghị giám sát đường truyền các điểm cầu"


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    restore = use_host_addresses(("127.0.0.1",))  # the in-process server's ICE candidates
    yield
    restore()


def seed(server: LiveServer) -> tuple[int, dict[str, str]]:
    s = server.services

    async def run() -> tuple[int, dict[str, str]]:
        await s.registry.create("T17", "Tỉnh Hòa Bình", "province")
        await s.registry.create("H1701", "Huyện Tân Lạc", "district", "T17")
        for code, name in (("X170101", "Xã Đông Lai"), ("X170102", "Xã Thanh Hối")):
            await s.registry.create(code, name, "commune", "H1701")
        await s.accounts.create_user("chutri", PASSWORD, "chair", display_name="Nguyễn Văn Hùng")
        meeting = await s.calendar.create(MeetingDraft(
            title=TITLE, starts_at=utcnow() - timedelta(minutes=5), ends_at=utcnow() + timedelta(hours=3),
            host_point_code="T17", chair_username="chutri"), created_by=None)
        result = await s.calendar.invite(meeting.id, InviteSelection(under="H1701"))
        await s.calendar.set_state(meeting.id, MeetingState.OPEN)
        return meeting.id, dict(result.links)

    return server.call(run())


async def stall_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # noqa: ASYNC251 - what an overloaded server's loop goes through


def test_monitor_shows_a_publishing_bridge_point(live_server: LiveServer,
                                                  browser_context: Callable[..., Any]) -> None:
    meeting_id, links = seed(live_server)
    ctx = browser_context(viewport={"width": 1366, "height": 900})
    chair = ctx.pages[0] if ctx.pages else ctx.new_page()
    errors = watch_errors(chair)
    log_in(chair, live_server, "chutri")
    chair.wait_for_url(f"{live_server.url}/meetings")
    chair.goto(f"{live_server.url}/meetings/{meeting_id}/console")
    chair.click("#monitor-link")
    chair.wait_for_url(f"{live_server.url}/meetings/{meeting_id}/monitor")
    chair.wait_for_selector('#conn-status[data-state="live"]')
    codes = chair.eval_on_selector_all(".monitor-row", "rows => rows.map(r => r.dataset.pointCode)")
    assert sorted(codes) == ["H1701", "T17", "X170101", "X170102"]
    assert chair.inner_text("#count-offline") == "4"

    token = links["X170101"].rsplit("/join/", 1)[-1]
    agent = subprocess.Popen(
        [sys.executable, "-m", "server", "bridge", "--url", live_server.url, "--token", token,
         "--video", "testsrc", "--audio", "none", "--video-size", "320x180", "--fps", "15",
         "--stats-interval", "0", "--ice-address", "127.0.0.1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        row = '.monitor-row[data-point-code="X170101"]'
        chair.wait_for_selector(f'{row}[data-state="online"]', timeout=45_000)
        # the server's link figures arrive: the camera's frame rate and bitrate, once counted
        chair.wait_for_function(
            """sel => { const r = document.querySelector(sel);
                        return r && parseFloat(r.querySelector('.col-fps').textContent) > 0
                          && parseFloat(r.querySelector('.col-bitrate').textContent) > 0; }""",
            arg=row, timeout=45_000)
        assert chair.inner_text(f"{row} .state-badge") == "Trực tuyến"
        assert chair.inner_text(f"{row} .col-publishing") == "Có"
        assert re.fullmatch(r"\d+\.\d", chair.inner_text(f"{row} .col-fps"))
        assert re.fullmatch(r"\d+", chair.inner_text(f"{row} .col-bitrate"))
        assert chair.inner_text("#count-online") == "1"
        assert chair.inner_text("#count-offline") == "3"
        assert chair.get_attribute('.monitor-row[data-point-code="X170102"]', "data-state") == "offline"
        assert "Báo cáo đường truyền gần nhất" in chair.inner_text("#stats-updated")
        screenshot(chair, "monitor-online-vi")
        # The server itself stalls (its event loop stopped 150 ms): the chair is told that the
        # server, not the points' links, is the cause.
        live_server.call(stall_the_loop(0.15))
        chair.wait_for_selector("#server-alert:not([hidden])", timeout=15_000)
        alert = chair.inner_text("#server-alert")
        assert "Máy chủ truyền thông đang quá tải" in alert and "Tiến trình xử lý bị chậm" in alert, alert
        screenshot(chair, "monitor-server-overloaded-vi")
    finally:
        agent.terminate()
        try:
            out, _ = agent.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
            out, _ = agent.communicate()
    assert errors == [], errors
    # the agent left: the next report shows the point offline again
    chair.wait_for_selector('.monitor-row[data-point-code="X170101"][data-state="offline"]', timeout=30_000)
    assert out is not None
