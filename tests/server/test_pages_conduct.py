"""The conduct pages over a real loopback server: the chair's console, a point's room (by
login or invitation link), the audit log; who may open them, languages, escaping."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from meetings.calendar import InviteSelection, MeetingDraft
from tests.conftest import Api
from tests.server.page_world import PageWorld, build_page_world

ROLES = ("admin", "chair", "secretary", "delegate", "observer")
TITLE = "Hội nghị <b>giao ban</b> & sơ kết quý I"


World = PageWorld


@pytest.fixture
async def world(api: Api) -> World:
    names = {"admin": "Quản trị hệ thống", "chair": "Nguyễn Văn Hùng", "secretary": "Trần Thị Lan",
             "delegate": "Bùi Văn Đức", "observer": "Lê Minh Quân"}
    points = {"delegate": "X170101", "observer": "X170102"}
    return await build_page_world(
        api,
        points=[("T17", "Tỉnh Hòa Bình", "province", None), ("H1701", "Huyện Tân Lạc", "district", "T17"),
                ("X170101", "Xã Đông Lai", "commune", "H1701"), ("X170102", "Xã Thanh Hối", "commune", "H1701"),
                ("X170201", "Xã Vũ Bản", "commune", "H1701")],
        accounts={role: (role, points.get(role), names[role]) for role in ROLES},
        invite=("X170101", "X170102"), title=TITLE)


def json_block(html: str, element_id: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.DOTALL)
    assert match, f"no #{element_id}"
    return json.loads(match.group(1))


def token_of(link: str) -> str:
    return link.rsplit("/join/", 1)[-1]


# --- the console ----------------------------------------------------------------------------

async def test_console_for_the_chair(world: World) -> None:
    status, html, resp = await world.get(f"/meetings/{world.meeting_id}/console", "chair")
    assert status == 200, html
    assert "Bảng điều khiển của chủ trì" in html
    assert "Hội nghị &lt;b&gt;giao ban&lt;/b&gt; &amp; sơ kết quý I" in html and "<b>giao ban" not in html
    for element in ('id="lock-toggle"', 'id="vote-form"', 'id="roll-call-start"', 'id="floor-next"',
                    'id="conclusions-form"', 'id="attendance-body"'):
        assert element in html, element
    data = json_block(html, "console-data")
    assert data["can_control"] is True and data["can_edit"] is True
    assert [p["code"] for p in data["points"]] == ["T17", "X170101", "X170102"]
    assert "js/console.js?v=" in html and "css/console.css?v=" in html
    assert "nonce-" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


async def test_console_read_mostly_for_the_secretary(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/console", "secretary")
    assert status == 200
    assert "Bảng điều khiển của thư ký" in html
    for element in ('id="lock-toggle"', 'id="vote-form"', 'id="roll-call-start"', 'id="floor-next"'):
        assert element not in html, element
    assert 'id="conclusions-form"' in html
    data = json_block(html, "console-data")
    assert data["can_control"] is False and data["can_edit"] is True


async def test_console_for_admin_in_english(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/console?lang=en", "admin")
    assert status == 200
    assert 'lang="en"' in html and "Chair&#39;s console" in html.replace("&#x27;", "&#39;").replace("'", "&#39;") and "Open a vote" in html
    assert json_block(html, "console-data")["can_control"] is True


@pytest.mark.parametrize("role", ["delegate", "observer"])
async def test_console_refused_to_others(world: World, role: str) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/console", role)
    assert status == 403
    assert 'data-error-code="forbidden"' in html and "console-data" not in html


async def test_console_logged_out_and_missing(world: World) -> None:
    status, _, resp = await world.get(f"/meetings/{world.meeting_id}/console")
    assert status == 302 and resp.headers["Location"].startswith("/login?next=")
    status, _, _ = await world.get("/meetings/999999/console", "chair")
    assert status == 404


# --- the room -------------------------------------------------------------------------------

async def test_room_for_a_delegate(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/room", "delegate")
    assert status == 200, html
    assert "Giơ tay xin phát biểu" in html and 'id="my-vote-list"' in html
    data = json_block(html, "room-data")
    assert data == {"meeting_id": world.meeting_id, "state": "scheduled", "point_code": "X170101",
                    "point_name": "Xã Đông Lai", "via_link": False, "delegate": True}
    assert "js/controls.js?v=" in html


@pytest.mark.parametrize("role", ["observer", "chair", "secretary"])
async def test_room_refused_without_a_speaking_seat(world: World, role: str) -> None:
    status, _, _ = await world.get(f"/meetings/{world.meeting_id}/room", role)
    assert status == 403


async def test_room_by_invitation_link(world: World) -> None:
    token = token_of(world.links["X170102"])
    status, html, resp = await world.get(f"/join/{token}/room")
    assert status == 200, html
    assert "Xã Thanh Hối" in html and "Giơ tay xin phát biểu" in html
    data = json_block(html, "room-data")
    assert data["via_link"] is True and data["point_code"] == "X170102" and data["delegate"] is False
    assert token not in json.dumps(data)  # the script reads it from the address, not from the page data
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert data["address"] == f"/meetings/{world.meeting_id}/room"
    cookie = resp.cookies["diemcau_room"]
    assert cookie["path"] == f"/meetings/{world.meeting_id}/room" and cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    status, html, _ = await world.get(f"/join/{token}/room?lang=en")
    assert status == 200 and "Raise hand to speak" in html

    # The page moves to /meetings/<id>/room: the cookie opens the same room there (and only there).
    room_cookie = {"Cookie": f"diemcau_room={cookie.value}"}
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/room", **room_cookie)
    assert status == 200, html
    again = json_block(html, "room-data")
    assert again["via_link"] is True and again["point_code"] == "X170102"
    status, _, resp = await world.get(f"/meetings/{world.meeting_id}/room", Cookie="diemcau_room=dci_forged.mac")
    assert status == 302 and resp.headers["Location"].startswith("/login")
    status, _, _ = await world.get(f"/meetings/{world.meeting_id}/console", **room_cookie)
    assert status == 302  # the room cookie is no login


async def test_room_cookie_of_another_meeting_is_ignored(world: World) -> None:
    s = world.api.services
    other = await s.calendar.create(MeetingDraft(title="Họp khác", starts_at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC),
                                                 host_point_code="T17"), created_by=None)
    links = (await s.calendar.invite(other.id, InviteSelection(codes=("X170101",)))).links
    status, _, resp = await world.get(f"/join/{token_of(links['X170101'])}/room")
    assert status == 200
    value = resp.cookies["diemcau_room"].value
    status, _, resp = await world.get(f"/meetings/{world.meeting_id}/room", Cookie=f"diemcau_room={value}")
    assert status == 302 and resp.headers["Location"].startswith("/login")


async def test_room_link_refuses_bad_tokens(world: World) -> None:
    status, html, _ = await world.get("/join/dci_forged-token/room")
    assert status == 404 and 'data-error-code="invalid_token"' in html
    status, _, _ = await world.get("/join/dcs_session/room")
    assert status == 404


async def test_join_page_links_to_the_room(world: World) -> None:
    token = token_of(world.links["X170101"])
    status, html, _ = await world.get(f"/join/{token}")
    assert status == 200 and f'href="/join/{token}/room"' in html


# --- links from the meeting page ---------------------------------------------------------------

@pytest.mark.parametrize(("role", "console", "room"), [
    ("admin", True, False), ("chair", True, False), ("secretary", True, False),
    ("delegate", False, True), ("observer", False, False),
])
async def test_meeting_page_links(world: World, role: str, console: bool, room: bool) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}", role)
    assert status == 200
    assert (f'href="/meetings/{world.meeting_id}/console"' in html) is console
    assert (f'href="/meetings/{world.meeting_id}/room"' in html) is room


# --- the audit log ----------------------------------------------------------------------------

async def test_audit_page_for_admins_only(world: World) -> None:
    status, html, _ = await world.get("/audit?meeting_id=7&action=vote.open", "admin")
    assert status == 200
    assert "Nhật ký hệ thống" in html and 'value="vote.open"' in html and 'value="7"' in html
    assert 'href="/audit"' in html  # the nav entry
    status, html, _ = await world.get("/audit?meeting_id=x%22%3E%3Cscript%3E", "admin")
    assert status == 200 and "<script>" not in html.split('id="audit-filter"')[1].split("</form>")[0]
    for role in ("chair", "secretary", "delegate", "observer"):
        status, html, _ = await world.get("/audit", role)
        assert status == 403, role
        _, html, _ = await world.get("/meetings", role)
        assert 'href="/audit"' not in html
    status, _, _resp = await world.get("/audit")
    assert status == 302
