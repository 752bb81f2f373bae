"""Admission control seen in real Chromium against a real server: the meeting's cap is 3, the
chair's console and two bridge points (real WebSocket clients with their invitation links)
fill it; a third point opens its invitation link in Chromium, enters the meeting room and is
refused **in Vietnamese** (the catalog's ``meeting_full`` text), while the chair's console lists
the refused point live (name, reason, time) and the two points stay in the meeting."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.models import MeetingState
from server.i18n import I18n
from tests.conftest import PASSWORD, make_config
from tests.e2e.test_browser_pages import log_in, watch_errors
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Hội nghị giao ban trực tuyến quý III"
CAP = 3


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path, **{"signalling.max_participants_per_meeting": CAP}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def seed(server: LiveServer) -> tuple[int, dict[str, str]]:
    s = server.services

    async def run() -> tuple[int, dict[str, str]]:
        await s.registry.create("T17", "Tỉnh Hòa Bình", "province")
        await s.registry.create("H1701", "Huyện Tân Lạc", "district", "T17")
        for code, name in (("X170101", "Xã Đông Lai"), ("X170102", "Xã Thanh Hối"), ("X170103", "Xã Phong Phú")):
            await s.registry.create(code, name, "commune", "H1701")
        await s.accounts.create_user("chutri", PASSWORD, "chair", display_name="Nguyễn Văn Hùng")
        meeting = await s.calendar.create(MeetingDraft(
            title=TITLE, starts_at=utcnow() - timedelta(minutes=5), ends_at=utcnow() + timedelta(hours=3),
            host_point_code="T17", chair_username="chutri"), created_by=None)
        result = await s.calendar.invite(meeting.id, InviteSelection(under="H1701"))
        await s.calendar.set_state(meeting.id, MeetingState.OPEN)
        return meeting.id, dict(result.links)

    return server.call(run())


def token_of(link: str) -> str:
    return link.rsplit("/join/", 1)[-1]


def point_joins(stack: ExitStack, server: LiveServer, token: str, meeting_id: int) -> ClientConnection:
    """A bridge point's WebSocket session (hello with its invitation token, join), closed
    when ``stack`` closes."""
    ws = stack.enter_context(connect(server.ws_url, open_timeout=10))
    ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
    assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    ws.send(json.dumps({"type": "join", "meeting_id": meeting_id, "id": "j"}))
    while True:
        reply = json.loads(ws.recv(timeout=10))
        if reply.get("re") == "j":
            assert reply["type"] == "joined", reply
            return ws


def test_refused_point_sees_vietnamese_and_the_console_lists_it(
        capped_server: LiveServer, browser_context: Callable[..., Any]) -> None:
    server = capped_server
    meeting_id, links = seed(server)
    chair_ctx = browser_context(viewport={"width": 1366, "height": 900})
    chair = chair_ctx.pages[0] if chair_ctx.pages else chair_ctx.new_page()
    chair_errors = watch_errors(chair)
    log_in(chair, server, "chutri")
    chair.wait_for_url(f"{server.url}/meetings")
    chair.goto(f"{server.url}/meetings/{meeting_id}/console")
    chair.wait_for_selector('#conn-status[data-state="live"]')
    assert chair.inner_text("#refusals-title").startswith("Kết nối bị từ chối")
    assert chair.is_visible("#refusals-empty")
    assert chair.inner_text("#refusals-empty") == "Chưa có kết nối nào bị từ chối."
    assert chair.is_hidden("#refusals-table")

    # two points take the last places (the chair's console is the first participant)
    with ExitStack() as stack:
        first = point_joins(stack, server, token_of(links["X170101"]), meeting_id)
        second = point_joins(stack, server, token_of(links["X170102"]), meeting_id)
        point_ctx = browser_context(viewport={"width": 1280, "height": 800})
        point = point_ctx.pages[0] if point_ctx.pages else point_ctx.new_page()
        point.goto(f"{server.url}/join/{token_of(links['X170103'])}")  # the invitation link
        assert "Xã Phong Phú" in point.inner_text(".join-card")
        point.click(".join-card a.btn-primary")
        point.wait_for_selector('#conn-status[data-state="failed"]', timeout=15_000)
        expected = I18n().error_message("vi", "meeting_full", cap=CAP)
        assert "đã đủ" in expected  # the catalog's Vietnamese text, with its diacritics
        status = point.inner_text("#conn-status")
        assert expected in status, status
        assert status.startswith("Không")  # "Không theo dõi trực tiếp: …" (not following live)
        screenshot(point, "admission-refused-point-vi", full_page=False)

        # the chair's console lists the refused point, live (the room page's two sockets were
        # both refused: one row, "×2")
        row = chair.locator('#refusal-list tr[data-point-code="X170103"]').first
        row.wait_for(timeout=10_000)
        assert row.get_attribute("data-reason") == "meeting_full"
        assert row.locator(".point-name").inner_text() == "Xã Phong Phú"
        assert row.locator(".refusal-reason").inner_text() == f"cuộc họp đã đủ chỗ (giới hạn {CAP})"
        assert re.fullmatch(r"\d\d:\d\d", row.locator(".refusal-time").inner_text())
        codes = chair.eval_on_selector_all("#refusal-list tr", "rows => rows.map(r => r.dataset.pointCode)")
        assert codes and set(codes) == {"X170103"}
        assert chair.inner_text("#refusal-count") == str(len(codes))
        assert chair.is_hidden("#refusals-empty")
        screenshot(chair, "admission-console-refusals-vi")

        # a second try is listed too; the two points are still in the meeting
        times = "() => [...document.querySelectorAll('#refusal-list tr')].reduce((n, r) => n + Number(r.dataset.times), 0)"
        before = chair.evaluate(times)
        point.goto(f"{server.url}/join/{token_of(links['X170103'])}/room")
        point.wait_for_selector('#conn-status[data-state="failed"]', timeout=15_000)
        assert expected in point.inner_text("#conn-status")
        chair.wait_for_function(f"() => ({times})() > {before}")
        for ws in (first, second):
            ws.send(json.dumps({"type": "ping", "t": 1, "id": "p"}))
            while (reply := json.loads(ws.recv(timeout=10))).get("re") != "p":
                pass
            assert reply["type"] == "pong"
    assert chair_errors == [], chair_errors
