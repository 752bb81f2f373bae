"""The pages in a real Chromium against a real server: log in through the form, read the
meetings in Vietnamese, watch a bridge point come online live, chat, switch to English."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from tests.conftest import PASSWORD
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Hội nghị trực tuyến triển khai chính quyền điện tử cấp xã"


@dataclass
class Seeded:
    meeting_id: int
    device_token: str


def seed(server: LiveServer) -> Seeded:
    s = server.services

    async def run() -> Seeded:
        await s.registry.create("T17", "Tỉnh Hòa Bình", "province")
        await s.registry.create("H1701", "Huyện Tân Lạc", "district", "T17")
        for code, name in (("X170101", "Xã Đông Lai"), ("X170102", "Xã Thanh Hối"), ("X170103", "Xã Phong Phú")):
            await s.registry.create(code, name, "commune", "H1701")
        await s.registry.create("H1702", "Huyện Lạc Sơn", "district", "T17")
        await s.registry.create("X170201", "Xã Vũ Bản", "commune", "H1702")
        await s.accounts.create_user("chutri", PASSWORD, "chair", display_name="Nguyễn Văn Hùng")
        await s.accounts.create_user("thuky", PASSWORD, "secretary", display_name="Trần Thị Lan")
        meeting = await s.calendar.create(MeetingDraft(
            title=TITLE, starts_at=utcnow() + timedelta(hours=2), ends_at=utcnow() + timedelta(hours=4),
            description="Sơ kết 6 tháng ứng dụng công nghệ thông tin trong cơ quan nhà nước.",
            host_point_code="T17", chair_username="chutri", secretary_username="thuky"), created_by=None)
        await s.calendar.invite(meeting.id, InviteSelection(under="H1701"))
        await s.calendar.invite(meeting.id, InviteSelection(codes=("X170201",)))
        issued = await s.registry.issue_token((await s.registry.by_code("X170101")).id)
        return Seeded(meeting.id, issued.token)

    return server.call(run())


def watch_errors(page: Any) -> list[str]:
    """Script errors and console errors (CSP violations included) seen by the page."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors


def log_in(page: Any, server: LiveServer, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/meetings")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


class Device:
    """A bridge point's hall PC speaking the WebSocket protocol with its device token."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.url = server.ws_url
        self.token = token

    def __enter__(self) -> Device:  # noqa: PYI034
        from websockets.sync.client import connect

        self.ws = connect(self.url, open_timeout=10).__enter__()
        self.send({"type": "hello", "v": 1, "token": self.token})
        welcome = self.wait_for("welcome")
        assert welcome["principal"], welcome
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def wait_for(self, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
        while True:
            message = json.loads(self.ws.recv(timeout=timeout_s))
            if message.get("type") == "error":
                raise AssertionError(message)
            if message.get("type") == kind:
                return message  # type: ignore[no-any-return]


def test_login_meetings_presence_and_chat(live_server: LiveServer, page: Any) -> None:
    seeded = seed(live_server)
    errors = watch_errors(page)

    # A wrong password: the translated message from the error code.
    log_in(page, live_server, "chutri", "sai-mat-khau-roi")
    page.wait_for_selector("#login-error:not([hidden])")
    assert page.inner_text("#login-error") == "Tên đăng nhập hoặc mật khẩu không đúng."

    # The real login form, then the meetings list in Vietnamese.
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/meetings")
    assert page.get_attribute("html", "lang") == "vi"
    assert page.inner_text("main h1") == "Cuộc họp"
    row = page.locator("tr", has_text=TITLE)
    assert "Đã lên lịch" in row.inner_text()
    assert page.locator(".site-header").inner_text().count("Nguyễn Văn Hùng") == 1

    # The meeting: points grouped by district, all offline, the socket goes live.
    row.locator("a.meeting-link").click()
    page.wait_for_url(f"{live_server.url}/meetings/{seeded.meeting_id}")
    page.wait_for_selector('#conn-status[data-state="live"]')
    assert page.inner_text("#conn-status") == "Trực tiếp"
    dong_lai = page.locator('.point-row[data-point-code="X170101"]')
    assert dong_lai.get_attribute("data-state") == "offline"
    assert "Ngoại tuyến" in dong_lai.inner_text()
    groups = page.locator(".point-group .group-name").all_inner_texts()
    assert groups == ["Cấp tỉnh", "Huyện Tân Lạc", "Huyện Lạc Sơn"]

    # A hall PC joins with its device token: the point turns online live.
    with Device(live_server, seeded.device_token) as device:
        device.send({"type": "join", "meeting_id": seeded.meeting_id})
        device.wait_for("joined")
        page.wait_for_selector('.point-row[data-point-code="X170101"][data-state="online"]')
        text = dong_lai.inner_text()
        assert "Trực tuyến" in text and re.search(r"từ \d\d:\d\d", text), text
        assert page.inner_text("#online-count") == "1"

        # Chat both ways.
        device.send({"type": "chat", "text": "Điểm cầu xã Đông Lai đã sẵn sàng."})
        page.wait_for_selector(".chat-item:has-text('Điểm cầu xã Đông Lai đã sẵn sàng.')")
        page.fill("#chat-text", "Đề nghị các điểm cầu kiểm tra âm thanh.")
        page.press("#chat-text", "Enter")
        while True:
            message = device.wait_for("chat")
            if message["text"] == "Đề nghị các điểm cầu kiểm tra âm thanh.":
                break
        assert message["from"]["label"] == "Nguyễn Văn Hùng"
        page.wait_for_selector(".chat-item:has-text('Đề nghị các điểm cầu kiểm tra âm thanh.')")
        shot = screenshot(page, "meeting-presence-vi")
        assert shot.stat().st_size > 10_000
        page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, portrait
        screenshot(page, "meeting-presence-tablet-vi", full_page=False)
        page.set_viewport_size({"width": 1366, "height": 900})

    # The hall PC leaves: offline again, with the time it left.
    page.wait_for_selector('.point-row[data-point-code="X170101"][data-state="offline"]')
    assert re.search(r"Ngoại tuyến\s*từ \d\d:\d\d", dong_lai.inner_text())

    # English on request, kept by the cookie.
    page.click(".lang-switch a[lang=en]")
    page.wait_for_selector('html[lang="en"]')
    page.wait_for_selector('#conn-status[data-state="live"]')
    assert page.inner_text("#presence-title") == "Bridge points"
    assert page.inner_text("#conn-status") == "Live"
    page.goto(f"{live_server.url}/meetings")
    assert page.inner_text("main h1") == "Meetings"
    screenshot(page, "meetings-en", full_page=False)
    # The only console errors allowed: the failed login's 401 response.
    assert [e for e in errors if "401" not in e] == []


def test_schedule_a_meeting_and_invite(live_server: LiveServer, page: Any) -> None:
    seed(live_server)
    errors = watch_errors(page)
    log_in(page, live_server, "thuky")
    page.wait_for_url(f"{live_server.url}/meetings")
    page.click("#new-meeting summary")
    page.fill("#m-title", "Họp giao ban <b>tuần</b> & kế hoạch tháng 12")
    page.click("#meeting-form button[type=submit]")
    page.wait_for_selector("#meeting-error:not([hidden])")
    assert page.inner_text("#meeting-error") == "Vui lòng chọn thời gian bắt đầu cuộc họp."
    page.fill("#m-starts", "2026-12-07T07:30")
    page.fill("#m-host", "H1701")
    page.click("#meeting-form button[type=submit]")
    page.wait_for_url(re.compile(r"/meetings/\d+$"))
    assert page.inner_text("h1.meeting-title") == "Họp giao ban <b>tuần</b> & kế hoạch tháng 12"
    assert "07:30, Thứ Hai, 07/12/2026" in page.inner_text(".meeting-when")

    # Invite every commune of Huyện Tân Lạc: links are shown once.
    page.click("#invite summary")
    page.check("input[name=mode][value=district]")
    page.select_option("#inv-under", "H1701")
    page.click("#invite-form button[type=submit]")
    page.wait_for_selector("#invite-result:not([hidden])")
    assert "Số điểm cầu mới được mời: 3" in page.inner_text("#invite-summary")
    links = page.locator("#invite-links tr").all_inner_texts()
    assert len(links) == 3 and all("/join/dci_" in link for link in links)
    screenshot(page, "meeting-invited-vi")

    # An invitation link's landing page.
    url = page.locator("#invite-links code.token").first.inner_text()
    page.goto(url)
    assert page.text_content(".eyebrow") == "Giấy mời họp trực tuyến"
    assert "Vào phòng họp" in page.inner_text(".join-card")
    assert errors == []


def test_rate_limited_login_is_explained(live_server: LiveServer, page: Any) -> None:
    seed(live_server)
    log_in(page, live_server, "chutri", "sai-mat-khau")
    for _ in range(live_server.config.auth.login_attempts_per_minute):
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#login-form:not([aria-busy])")
    page.wait_for_function(
        "document.querySelector('#login-error').textContent.startsWith('Bạn đã thử quá nhiều lần')")
    assert re.search(r"Vui lòng đợi \d+ giây rồi thử lại\.", page.inner_text("#login-error"))
    screenshot(page, "login-rate-limited-vi", full_page=False)


def test_registry_admin_tools(live_server: LiveServer, page: Any, tmp_path: Any) -> None:
    seed(live_server)
    live_server.call(live_server.services.accounts.create_user("quantri", PASSWORD, "admin",
                                                              display_name="Quản trị hệ thống"))
    errors = watch_errors(page)
    log_in(page, live_server, "quantri")
    page.wait_for_url(f"{live_server.url}/meetings")
    page.click(".main-nav a[href='/points']")
    page.wait_for_url(f"{live_server.url}/points")
    assert page.inner_text("main h1").startswith("Điểm cầu")

    # Unfold a district, disable one commune (the branch stays open).
    page.click(".level-district:has-text('Huyện Tân Lạc') > details > summary .point-name")
    line = page.locator(".point-line[data-point-name='Xã Thanh Hối']")
    line.locator("button[data-action=toggle]").click()
    page.wait_for_selector(".point-line[data-point-name='Xã Thanh Hối'][data-enabled=false]")
    assert line.locator(".enabled-state").inner_text() == "Tạm ngừng"
    assert line.locator("button[data-action=toggle]").inner_text() == "Kích hoạt"
    assert line.is_visible()

    # A device token, shown once.
    line.locator("button[data-action=token]").click()
    page.wait_for_selector("#token-box:not([hidden])")
    assert page.inner_text("#token-value").startswith("dcp_")
    assert page.inner_text("#token-point") == "Xã Thanh Hối"

    # An import with errors: numbered rows, nothing imported.
    bad = tmp_path / "diem-cau.csv"
    bad.write_text("code,name,level,parent\nX170104,Xã Mỹ Hòa,xã,H1701\nX170101,Xã Trùng Mã,xã,H1701\n"
                   "X999,Xã Không Cha,xã,H9999\n", encoding="utf-8")
    page.click("#import summary")
    page.set_input_files("#import-file", str(bad))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-error:not([hidden])")
    assert page.inner_text("#import-error-text") == "Tệp có lỗi; chưa có điểm cầu nào được nhập."
    rows = page.locator("#import-rows li").all_inner_texts()
    assert rows and all(row.startswith("Dòng ") for row in rows), rows
    screenshot(page, "points-admin-vi")
    assert [e for e in errors if "400" not in e] == []  # the refused import answers 400
