"""Meeting conduct in real Chromium against a real server: a hall PC in its room (opened by
its invitation link) and the chair's console, live over the WebSocket — raise hand, grant,
the speaking timer, a roll call with headcount, a vote from opening to the published result,
the minutes' conclusions shown as text."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.models import MeetingState
from tests.conftest import PASSWORD
from tests.e2e.test_browser_pages import log_in, watch_errors
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Hội nghị trực tuyến sơ kết 6 tháng đầu năm"
HALL = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


@dataclass
class Scene:
    meeting_id: int
    links: dict[str, str]
    chair: Any  # the chair's console page
    point: Any  # Xã Đông Lai's room page (invitation link)
    chair_errors: list[str]
    point_errors: list[str]


def seed(server: LiveServer) -> tuple[int, dict[str, str]]:
    s = server.services

    async def run() -> tuple[int, dict[str, str]]:
        await s.registry.create("T17", "Tỉnh Hòa Bình", "province")
        await s.registry.create("H1701", "Huyện Tân Lạc", "district", "T17")
        for code, name in (("X170101", "Xã Đông Lai"), ("X170102", "Xã Thanh Hối"), ("X170103", "Xã Phong Phú")):
            await s.registry.create(code, name, "commune", "H1701")
        await s.accounts.create_user("chutri", PASSWORD, "chair", display_name="Nguyễn Văn Hùng")
        await s.accounts.create_user("thuky", PASSWORD, "secretary", display_name="Trần Thị Lan")
        meeting = await s.calendar.create(MeetingDraft(
            title=TITLE, starts_at=utcnow() - timedelta(minutes=5), ends_at=utcnow() + timedelta(hours=3),
            host_point_code="T17", chair_username="chutri", secretary_username="thuky"), created_by=None)
        result = await s.calendar.invite(meeting.id, InviteSelection(under="H1701"))
        await s.calendar.set_state(meeting.id, MeetingState.OPEN)
        return meeting.id, dict(result.links)

    return server.call(run())


def link_token(link: str) -> str:
    return link.rsplit("/join/", 1)[-1]


def open_scene(server: LiveServer, browser_context: Callable[..., Any]) -> Scene:
    meeting_id, links = seed(server)
    chair_ctx = browser_context(viewport=HALL)
    chair = chair_ctx.pages[0] if chair_ctx.pages else chair_ctx.new_page()
    point_ctx = browser_context(viewport=HALL)
    point = point_ctx.pages[0] if point_ctx.pages else point_ctx.new_page()
    chair_errors = watch_errors(chair)
    point_errors = watch_errors(point)
    log_in(chair, server, "chutri")
    chair.wait_for_url(f"{server.url}/meetings")
    chair.goto(f"{server.url}/meetings/{meeting_id}")
    chair.click("#console-link")
    chair.wait_for_url(f"{server.url}/meetings/{meeting_id}/console")
    chair.wait_for_selector('#conn-status[data-state="live"]')
    point.goto(f"{server.url}/join/{link_token(links['X170101'])}/room")
    point.wait_for_selector('#conn-status[data-state="live"]')
    # The token leaves the address bar (and the language links) once the room is open.
    assert point.url == f"{server.url}/meetings/{meeting_id}/room"
    assert "dci_" not in point.inner_html(".lang-switch")
    return Scene(meeting_id, links, chair, point, chair_errors, point_errors)


def no_errors(scene: Scene) -> None:
    assert scene.chair_errors == [], scene.chair_errors
    assert scene.point_errors == [], scene.point_errors


def test_floor_roll_call_live(live_server: LiveServer, browser_context: Callable[..., Any]) -> None:
    scene = open_scene(live_server, browser_context)
    chair, point = scene.chair, scene.point
    assert point.inner_text("#room-point") == "Xã Đông Lai"
    point.reload()  # a reload keeps the room (its cookie and this tab's copy of the token)
    point.wait_for_selector('#conn-status[data-state="live"]')
    assert point.inner_text("#room-point") == "Xã Đông Lai"
    assert point.get_attribute("#floor-state", "data-state") == "idle"
    assert chair.inner_text("#speaker-name") == "Chưa có ai phát biểu."
    # The hall's presence reaches the attendance table live.
    chair.wait_for_selector('#attendance-body tr[data-point-code="X170101"][data-status="online"]')
    assert chair.inner_text("#attendance-summary").startswith("Trực tuyến 1 ·")

    # The hall raises its hand with a topic: the console's queue shows it live.
    point.fill("#raise-topic", "Ý kiến về <b>kinh phí</b> chuyển đổi số")
    point.click("#raise-hand")
    point.wait_for_selector('#floor-state[data-state="queued"]')
    assert "vị trí số 1 / 1" in point.inner_text("#queue-place")
    point.set_viewport_size(TABLET)
    screenshot(point, "room-queued-tablet-vi", full_page=False)
    point.set_viewport_size(HALL)
    row = chair.locator('#queue-list li[data-point-code="X170101"]')
    row.wait_for()
    assert "Xã Đông Lai" in row.inner_text()
    assert row.locator(".queue-topic").inner_text() == "Ý kiến về <b>kinh phí</b> chuyển đổi số"
    assert chair.inner_text("#queue-count") == "1"
    chair.wait_for_function("() => document.querySelector('#queue-list .queue-wait').textContent >= '00:01'")
    screenshot(chair, "console-queue-hall-vi", full_page=False)

    # The chair gives the floor: the hall sees "Đang phát biểu", the console runs the timer.
    row.locator('button[data-action="grant"]').click()
    point.wait_for_selector('#floor-state[data-state="speaking"]')
    assert point.inner_text("#you-speak") == "Đang phát biểu"
    chair.wait_for_selector('#speaker-box[data-state="speaking"]')
    assert chair.inner_text("#speaker-name") == "Xã Đông Lai"
    assert chair.inner_text("#main-screen-name") == "Xã Đông Lai"
    assert point.inner_text("#main-screen-name") == "Xã Đông Lai"
    chair.wait_for_function("() => document.querySelector('#speaker-timer').textContent >= '00:02'")
    assert re.fullmatch(r"\d\d:\d\d", chair.inner_text("#speaker-timer"))
    assert chair.locator("#queue-list li").count() == 0

    # A roll call: the hall confirms with its headcount, the console sees it arrive.
    chair.click("#roll-call-start")
    point.wait_for_selector("#roll-call-card:not([hidden])")
    point.fill("#headcount", "27")
    point.click("#roll-call-confirm")
    point.wait_for_selector("#roll-call-done:not([hidden])")
    chair.wait_for_selector('#attendance-body tr[data-point-code="X170101"][data-confirmed="true"]')
    assert re.search(r"1 / 5 đã xác nhận", chair.inner_text("#roll-call-status"))
    hall = chair.locator('#attendance-body tr[data-point-code="X170101"]')
    assert hall.locator('[data-field="headcount"]').input_value() == "27"
    screenshot(chair, "console-floor-hall-vi", full_page=False)
    screenshot(chair, "console-full-hall-vi")
    screenshot(point, "room-speaking-hall-vi", full_page=False)

    # The chair ends the turn and closes the roll call.
    chair.click("#floor-revoke")
    point.wait_for_selector('#floor-state[data-state="idle"]')
    chair.wait_for_selector('#speaker-box[data-state="none"]')
    chair.click("#roll-call-close")
    point.wait_for_selector("#roll-call-card[hidden]", state="attached")

    # Staff mark a hall absent with a reason; it stays after a reload.
    phong_phu = chair.locator('#attendance-body tr[data-point-code="X170103"]')
    phong_phu.locator('[data-field="status"]').select_option("absent")
    phong_phu.locator('[data-field="reason"]').fill("Mất điện <do bão>")
    phong_phu.locator('button[data-action="save"]').click()
    chair.wait_for_selector('#attendance-body tr[data-point-code="X170103"][data-status="absent"]:not([data-dirty="true"])')
    chair.reload()
    chair.wait_for_selector('#attendance-body tr[data-point-code="X170103"][data-status="absent"]')
    assert phong_phu.locator('[data-field="reason"]').input_value() == "Mất điện <do bão>"
    chair.set_viewport_size(TABLET)
    screenshot(chair, "console-tablet-vi")

    # A delegate attending from Xã Thanh Hối opens its room from the meeting page (session cookie).
    live_server.call(live_server.services.accounts.create_user(
        "daibieu", PASSWORD, "delegate", display_name="Bùi Văn Đức", point_code="X170102"))
    log_in(point, live_server, "daibieu")
    point.wait_for_url(f"{live_server.url}/meetings")
    point.goto(f"{live_server.url}/meetings/{scene.meeting_id}")
    point.click("#room-link")
    point.wait_for_url(f"{live_server.url}/meetings/{scene.meeting_id}/room")
    point.wait_for_selector('#conn-status[data-state="live"]', timeout=30_000)
    assert point.inner_text("#room-point") == "Xã Thanh Hối"
    point.click("#raise-hand")
    point.wait_for_selector('#floor-state[data-state="queued"]')
    chair.wait_for_selector('#queue-list li[data-point-code="X170102"]')
    point.click("#withdraw")
    point.wait_for_selector('#floor-state[data-state="idle"]')
    chair.wait_for_selector('#queue-list li[data-point-code="X170102"]', state="detached")

    # Mute / unmute, lock / unlock: the room shows each change live.
    chair.set_viewport_size(HALL)
    row = chair.locator('#attendance-body tr[data-point-code="X170102"]')
    row.locator('button[data-action="mute"]').click()
    point.wait_for_selector("#muted-banner:not([hidden])")
    chair.wait_for_selector('#attendance-body tr[data-point-code="X170102"] button[data-action="unmute"]')
    assert chair.inner_text("#muted-list") == "Xã Thanh Hối"
    row.locator('button[data-action="unmute"]').click()
    point.wait_for_selector("#muted-banner", state="hidden")
    chair.click("#lock-toggle")
    point.wait_for_selector("#locked-banner:not([hidden])")
    chair.wait_for_selector("#lock-badge:not([hidden])")
    assert chair.inner_text("#lock-toggle") == "Mở khóa cuộc họp"
    chair.click("#lock-toggle")
    point.wait_for_selector("#locked-banner", state="hidden")

    # Removing the point (after a confirmation) ends its room.
    chair.once("dialog", lambda dialog: dialog.accept())
    row.locator('button[data-action="remove"]').click()
    point.wait_for_selector('body[data-removed="true"]')
    assert point.inner_text("#room-error") == "Chủ trì đã mời điểm cầu này ra khỏi cuộc họp."
    no_errors(scene)


def test_vote_minutes_and_audit_live(live_server: LiveServer, browser_context: Callable[..., Any]) -> None:
    scene = open_scene(live_server, browser_context)
    chair, point = scene.chair, scene.point

    # The chair opens a vote: the hall gets big ballot buttons, the console counts 0 / N.
    chair.click("#vote-new summary")
    chair.fill("#vote-title", "Thông qua kế hoạch chuyển đổi số <năm 2027>")
    chair.click("#vote-form button[type=submit]")
    item = chair.locator(".vote-item").first
    item.wait_for()
    assert item.locator(".vote-title").inner_text() == "Thông qua kế hoạch chuyển đổi số <năm 2027>"
    assert re.fullmatch(r"0 / \d+", item.locator(".vote-count").inner_text())
    eligible = int(item.locator(".vote-count").inner_text().split(" / ")[1])
    assert eligible >= 1
    point.wait_for_selector(".ballot-btn[data-choice=agree]")
    assert point.locator(".ballot-btn").all_inner_texts() == ["Tán thành", "Không tán thành", "Không biểu quyết"]
    screenshot(point, "room-ballot-hall-vi", full_page=False)

    # The hall votes while its network is down: the ballot is kept and sent again, with the
    # same client_ballot_id, when the network is back; the console's count goes to 1 / N live.
    point.context.set_offline(True)
    point.click(".ballot-btn[data-choice=agree]")
    point.wait_for_selector("#room-error:not([hidden])")
    assert point.inner_text("#room-error") == "Không kết nối được tới máy chủ. Vui lòng kiểm tra kết nối mạng."
    assert item.locator(".vote-count").inner_text() == f"0 / {eligible}"
    point.context.set_offline(False)
    point.wait_for_selector(".vote-item .voted")
    assert point.inner_text(".vote-item .voted") == "Bạn đã biểu quyết: Tán thành"
    chair.wait_for_selector(f".vote-item .vote-count:text-is('1 / {eligible}')")
    chair.wait_for_selector('#attendance-body tr[data-point-code="X170101"][data-status="online"]')
    screenshot(chair, "console-vote-hall-vi", full_page=False)

    # A ballot re-sent with the same client_ballot_id (a lost answer) counts once.
    again = point.evaluate("""async () => {
        const key = Object.keys(localStorage).find((k) => k.startsWith("diemcau.ballot."));
        const ballot = JSON.parse(localStorage.getItem(key));
        const token = sessionStorage.getItem(Object.keys(sessionStorage).find((k) => k.startsWith("diemcau.room.")));
        const response = await fetch(`/api/votes/${key.split(".").pop()}/ballots`, {
            method: "POST", headers: {"Content-Type": "application/json", Authorization: `Bearer ${token}`},
            body: JSON.stringify({choice: ballot.choice, client_ballot_id: ballot.client_ballot_id})});
        return [response.status, await response.json()];
    }""")
    assert again[0] == 201 and again[1]["duplicate"] is True, again
    assert item.locator(".vote-count").inner_text() == f"1 / {eligible}"

    # Close, then publish: the hall sees the result table.
    item.locator("button[data-action=close]").click()
    point.wait_for_selector(".vote-item[data-state=closed]")
    chair.wait_for_selector(".vote-item[data-state=closed] .vote-result")
    chair.locator(".vote-item button[data-action=publish]").click()
    point.wait_for_selector(".vote-item[data-state=published] .vote-result")
    agree = point.locator(".vote-result tr[data-choice=agree]")
    assert agree.locator("td").all_inner_texts()[:2] == ["Tán thành", "1"]
    assert "100" in agree.locator("td").nth(2).inner_text()
    assert f"1 / {eligible}" in point.inner_text(".vote-result .result-summary")
    screenshot(point, "room-result-hall-vi", full_page=False)
    point.set_viewport_size(TABLET)
    screenshot(point, "room-result-tablet-vi", full_page=False)

    # The minutes' conclusions: markup stays text, a version is generated with its PDF.
    conclusions = "<script>window.__pwned = 1</script>\nGiao UBND các xã hoàn thành trước 31/12."
    chair.fill("#conclusions", conclusions)
    chair.click("#conclusions-form button[type=submit]")
    chair.wait_for_selector("#minutes-ok:not([hidden])")
    chair.reload()
    chair.wait_for_selector('#conn-status[data-state="live"]')
    chair.wait_for_function("() => document.querySelector('#conclusions').value.length > 0")
    assert chair.input_value("#conclusions") == conclusions
    assert chair.evaluate("() => window.__pwned") is None
    chair.click("#minutes-generate")
    chair.wait_for_selector("#minutes-list li[data-version='1'] a", timeout=60_000)
    href = chair.get_attribute("#minutes-list li[data-version='1'] a", "href")
    pdf = chair.request.get(f"{live_server.url}{href}")
    assert pdf.status == 200 and pdf.headers["content-type"].startswith("application/pdf")
    assert pdf.body()[:5] == b"%PDF-"
    screenshot(chair, "console-minutes-hall-vi")
    offline = [e for e in scene.point_errors if "ERR_INTERNET_DISCONNECTED" in e]
    assert offline and [e for e in scene.point_errors if e not in offline] == [], scene.point_errors
    assert scene.chair_errors == [], scene.chair_errors

    # The audit log (admins): the vote's actions, filtered by meeting.
    live_server.call(live_server.services.accounts.create_user("quantri", PASSWORD, "admin",
                                                              display_name="Quản trị hệ thống"))
    admin = browser_context(viewport=HALL)
    page = admin.pages[0] if admin.pages else admin.new_page()
    admin_errors = watch_errors(page)
    log_in(page, live_server, "quantri")
    page.wait_for_url(f"{live_server.url}/meetings")
    page.click(".main-nav a[href='/audit']")
    page.wait_for_url(f"{live_server.url}/audit")
    page.fill("#audit-meeting", str(scene.meeting_id))
    page.click("#audit-filter button[type=submit]")
    page.wait_for_selector("#audit-body tr")
    actions = page.locator("#audit-body tr td:nth-child(3)").all_inner_texts()
    assert any(a.startswith("vote.") for a in actions), actions
    assert "Nguyễn Văn Hùng" in page.inner_text("#audit-body")
    screenshot(page, "audit-vi", full_page=False)
    assert admin_errors == []

    # The console in English.
    chair.goto(f"{live_server.url}/meetings/{scene.meeting_id}/console?lang=en")
    chair.wait_for_selector('#conn-status[data-state="live"]')
    chair.wait_for_selector(".vote-item[data-state=published] .vote-result")
    assert chair.inner_text(".console-head .eyebrow").lower() == "chair's console"
    assert chair.inner_text(".vote-item .vote-state") == "Result published"
    assert chair.locator(".vote-result tr[data-choice=agree] td").first.inner_text() == "Agree"
    screenshot(chair, "console-en", full_page=False)
