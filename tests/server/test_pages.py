"""Server-rendered pages over a real loopback server: roles, redirects, escaping, languages."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.models import BridgePoint, Invitation, PointLevel
from server.app import create_app
from server.auth import COOKIE, csrf_token, sign_cookie
from server.pages import (
    SITE,
    group_invitations,
    language_links,
    meeting_sections,
    safe_next,
    utc_offset,
)
from tests.conftest import Api, make_config

ROLES = ("admin", "chair", "secretary", "delegate", "observer")


@dataclass
class World:
    """A province with two districts and their communes, one account per role, one meeting."""

    api: Api
    cookies: dict[str, dict[str, str]]
    tokens: dict[str, str]
    meeting_id: int
    links: dict[str, str]

    def as_(self, role: str, **extra: str) -> dict[str, str]:
        return {**self.cookies[role], **extra}

    async def get(self, path: str, role: str | None = None, **headers: str) -> tuple[int, str, Any]:
        base = self.cookies[role] if role else {}
        self.api.client.session.cookie_jar.clear()  # only the cookies this call names
        resp = await self.api.client.get(path, headers={**base, **headers}, allow_redirects=False)
        return resp.status, await resp.text(), resp


async def login_cookie(api: Api, username: str) -> tuple[dict[str, str], str]:
    login = await api.login(username)
    api.client.session.cookie_jar.clear()  # each request names its own cookie
    signed = sign_cookie(api.services.secret, login["token"])
    return {"Cookie": f"{COOKIE}={signed}"}, login["token"]


@pytest.fixture
async def world(api: Api) -> World:
    s = api.services
    await s.registry.create("T17", "Tỉnh Hòa Bình", "province")
    await s.registry.create("H1701", "Huyện Tân Lạc", "district", "T17")
    await s.registry.create("X170101", "Xã Đông Lai", "commune", "H1701")
    await s.registry.create("X170102", "Xã Thanh Hối", "commune", "H1701")
    await s.registry.create("H1702", "Huyện Lạc Sơn", "district", "T17")
    await s.registry.create("X170201", "Xã Vũ Bản", "commune", "H1702")
    names = {"admin": "Quản trị hệ thống", "chair": "Nguyễn Văn Hùng", "secretary": "Trần Thị Lan",
             "delegate": "Bùi Văn Đức", "observer": "Lê Minh Quân"}
    points = {"delegate": "X170101"}
    for role in ROLES:
        await s.accounts.create_user(role, "mat-khau-thu-nghiem", role, display_name=names[role],
                                     point_code=points.get(role))
    meeting = await s.calendar.create(MeetingDraft(
        title="Hội nghị trực tuyến sơ kết công tác chuyển đổi số quý I",
        starts_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        description="Triển khai chính quyền điện tử đến cấp xã.",
        host_point_code="T17", chair_username="chair", secretary_username="secretary",
    ), created_by=None)
    result = await s.calendar.invite(meeting.id, InviteSelection(under="H1701"))
    cookies, tokens = {}, {}
    for role in ROLES:
        cookies[role], tokens[role] = await login_cookie(api, role)
    return World(api, cookies, tokens, meeting.id, result.links)


# --- redirects and access ------------------------------------------------------------------

async def test_logged_out_pages_redirect_to_login(world: World) -> None:
    status, _, resp = await world.get("/")
    assert status == 302 and resp.headers["Location"] == "/meetings"
    status, _, resp = await world.get("/meetings")
    assert status == 302 and resp.headers["Location"] == "/login"
    status, _, resp = await world.get(f"/meetings/{world.meeting_id}?tab=chat")
    location = URL(resp.headers["Location"])
    assert status == 302 and location.path == "/login"
    assert location.query["next"] == f"/meetings/{world.meeting_id}?tab=chat"
    status, _, resp = await world.get("/points")
    assert status == 302 and URL(resp.headers["Location"]).query["next"] == "/points"


async def test_forged_or_closed_session_goes_back_to_login(world: World) -> None:
    status, _, resp = await world.get("/meetings", Cookie=f"{COOKIE}=dcs_forged.nope")
    assert status == 302 and resp.headers["Location"] == "/login"
    assert f"{COOKIE}=" in resp.headers.get("Set-Cookie", "")  # the bad cookie is cleared


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_sees_what_it_may(world: World, role: str) -> None:
    status, html, _ = await world.get("/meetings", role)
    assert status == 200
    visible = role in ("admin", "chair", "secretary", "delegate")  # the delegate's commune is invited
    assert ("Hội nghị trực tuyến sơ kết công tác chuyển đổi số quý I" in html) is visible
    assert ('id="meeting-form"' in html) is (role in ("admin", "chair", "secretary"))
    assert ('href="/points"' in html) is (role in ("admin", "chair", "secretary"))

    status, html, _ = await world.get("/points", role)
    if role in ("admin", "chair", "secretary"):
        assert status == 200
        assert "Xã Đông Lai" in html and "X170101" in html
        assert ('data-action="token"' in html) is (role == "admin")
        assert ('id="import-form"' in html) is (role == "admin")
    else:
        assert status == 403
        assert "Không có quyền truy cập" in html

    status, html, _ = await world.get(f"/meetings/{world.meeting_id}", role)
    if visible:
        assert status == 200, html
        assert "Xã Thanh Hối" in html and "Huyện Tân Lạc" in html
        assert ('id="invite-form"' in html) is (role in ("admin", "chair", "secretary"))
        assert ('id="chat-form"' in html) is (role != "observer")
    else:
        assert status == 403
        assert "Bạn không có quyền xem trang này" in html


async def test_unknown_meeting_is_a_translated_404(world: World) -> None:
    status, html, _ = await world.get("/meetings/999999", "admin")
    assert status == 404
    assert "Cuộc họp không tồn tại." in html


async def test_login_page_when_logged_in_goes_on(world: World) -> None:
    status, _, resp = await world.get("/login?next=/points", "chair")
    assert status == 302 and resp.headers["Location"] == "/points"
    status, _, resp = await world.get("/login?next=//evil.example/", "chair")
    assert resp.headers["Location"] == "/meetings"


def test_safe_next_keeps_to_this_site() -> None:
    assert safe_next("/meetings/3?x=1") == "/meetings/3?x=1"
    for bad in (None, "", "https://evil.example/", "//evil.example", "/\\evil.example", "meetings"):
        assert safe_next(bad) == "/meetings"


# --- content -------------------------------------------------------------------------------

async def test_titles_are_escaped(world: World) -> None:
    s = world.api.services
    evil = await s.calendar.create(MeetingDraft(
        title='<script>alert("xss")</script> Họp <b>khẩn</b>', starts_at=utcnow(),
        description='<img src=x onerror=alert(1)>', chair_username="chair"), created_by=None)
    for path in ("/meetings", f"/meetings/{evil.id}"):
        status, html, _ = await world.get(path, "chair")
        assert status == 200
        assert '<script>alert("xss")' not in html and "<b>khẩn</b>" not in html
        assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt; Họp &lt;b&gt;khẩn&lt;/b&gt;" in html
    _, html, _ = await world.get(f"/meetings/{evil.id}", "chair")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_csrf_meta_and_content_security_policy(world: World) -> None:
    status, html, resp = await world.get("/meetings", "chair")
    assert status == 200
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert meta and meta.group(1) == csrf_token(world.api.services.secret, world.tokens["chair"])
    csp = resp.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<script type="importmap" nonce="{nonce.group(1)}">' in html
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    assert resp.headers["Cache-Control"] == "no-store"


async def test_times_are_shown_in_vietnam_time(world: World) -> None:
    _, html, _ = await world.get(f"/meetings/{world.meeting_id}", "chair")
    assert "08:00, Thứ Ba, 01/12/2026" in html  # 01:00 UTC
    assert 'datetime="2026-12-01T01:00:00+00:00"' in html
    _, html, _ = await world.get(f"/meetings/{world.meeting_id}?lang=en", "chair")
    assert "Tue 1 Dec 2026, 08:00" in html


async def test_meeting_page_groups_points_by_district(world: World) -> None:
    await world.api.services.calendar.invite(world.meeting_id, InviteSelection(codes=("X170201",)))
    _, html, _ = await world.get(f"/meetings/{world.meeting_id}", "secretary")
    groups = re.findall(r'<details class="point-group" open data-group="([^"]*)">', html)
    assert groups == ["", "H1701", "H1702"]  # the province (host) first, then districts by code
    rows = re.findall(r'data-point-code="([^"]+)" data-state="offline"', html)
    assert rows == ["T17", "H1701", "X170101", "X170102", "X170201"]
    assert "Ngoại tuyến" in html and 'id="meeting-data"' in html


def _point(pid: int, code: str, level: str, parent: str | None) -> BridgePoint:
    return BridgePoint(pid, code, f"Điểm {code}", PointLevel(level), None, True, utcnow(), parent_code=parent)


def test_group_invitations_is_a_plain_function() -> None:
    points = [_point(1, "T", "province", None), _point(2, "H2", "district", "T"), _point(3, "X2a", "commune", "H2"),
              _point(4, "H1", "district", "T"), _point(5, "X1a", "commune", "H1")]
    invitations = [Invitation(1, p, utcnow(), utcnow()) for p in reversed(points) if p.code != "H1"]
    groups = group_invitations(invitations, points)
    assert [(g.code, g.name) for g in groups] == [("", ""), ("H1", "Điểm H1"), ("H2", "Điểm H2")]
    assert [i.point.code for i in groups[2].invitations] == ["H2", "X2a"]
    assert [i.point.code for i in groups[1].invitations] == ["X1a"]


def test_meeting_sections_order() -> None:
    from meetings.models import Meeting, MeetingState

    def meeting(mid: int, state: str, day: int) -> Meeting:
        at = datetime(2026, 12, day, tzinfo=UTC)
        return Meeting(mid, f"m{mid}", "", at, None, MeetingState(state), None, None, None, None, at, None, None)

    sections = meeting_sections([meeting(1, "closed", 1), meeting(2, "scheduled", 9), meeting(3, "open", 5),
                                 meeting(4, "scheduled", 7), meeting(5, "closed", 3)])
    assert [s["state"] for s in sections] == ["open", "scheduled", "closed"]
    assert [m.id for m in sections[1]["meetings"]] == [4, 2]
    assert [m.id for m in sections[2]["meetings"]] == [5, 1]
    assert utc_offset() == "+07:00"


# --- languages -----------------------------------------------------------------------------

async def test_vietnamese_by_default_english_on_request(world: World) -> None:
    status, html, resp = await world.get("/login")
    assert status == 200 and '<html lang="vi">' in html
    assert "Đăng nhập" in html and "Tên đăng nhập" in html and "Mật khẩu" in html
    assert "Set-Cookie" not in resp.headers

    status, html, resp = await world.get("/login?lang=en")
    assert '<html lang="en">' in html and ">Log in<" in html and "Đăng nhập" not in html
    assert "lang=en" in resp.headers["Set-Cookie"]

    _, html, _ = await world.get("/login", Cookie="lang=en")
    assert '<html lang="en">' in html
    _, html, _ = await world.get("/login?lang=vi", Cookie="lang=en")
    assert '<html lang="vi">' in html
    _, html, _ = await world.get("/login", **{"Accept-Language": "en-US,en;q=0.9,vi;q=0.5"})
    assert '<html lang="en">' in html
    _, html, _ = await world.get("/login", **{"Accept-Language": "fr, vi;q=0.8, en;q=0.5"})
    assert '<html lang="vi">' in html


async def test_pages_for_a_logged_in_user_switch_language(world: World) -> None:
    _, html, _ = await world.get("/meetings", "chair")
    assert "Cuộc họp" in html and "Lên lịch cuộc họp" in html and "Đã lên lịch" in html
    assert "Chủ trì" in html and "Đăng xuất" in html
    _, html, _ = await world.get("/meetings?lang=en", "chair")
    assert "Schedule a meeting" in html and "Scheduled" in html and "Log out" in html
    assert "Lên lịch" not in html
    assert 'href="/meetings?lang=vi"' in html  # the switcher keeps the page


async def test_config_default_locale(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, **{"i18n.default_locale": "en"})))
    html = await (await client.get("/login")).text()
    assert '<html lang="en">' in html and "Username" in html


async def test_js_catalog_is_inlined_for_the_page_locale(world: World) -> None:
    import json

    _, html, _ = await world.get("/login")
    raw = re.search(r'<script type="application/json" id="i18n-data">(.*?)</script>', html, re.DOTALL)
    assert raw
    catalog = json.loads(raw.group(1))
    assert catalog["locale"] == "vi" and catalog["timezone"] == "Asia/Ho_Chi_Minh"
    assert catalog["errors"]["bad_credentials"] == "Tên đăng nhập hoặc mật khẩu không đúng."
    assert "%(seconds)s" in catalog["errors"]["rate_limited"]
    assert catalog["messages"]["Enter your username and password."] == "Vui lòng nhập tên đăng nhập và mật khẩu."
    assert catalog["levels"]["commune"] == "Xã"


def test_language_links_keep_the_query() -> None:
    links = language_links("/meetings/3", {"tab": "chat", "lang": "vi"}, "vi")
    assert [(link["locale"], link["href"], link["current"]) for link in links] == [
        ("vi", "/meetings/3?tab=chat&lang=vi", True), ("en", "/meetings/3?tab=chat&lang=en", False)]


# --- join links, logout, static files -------------------------------------------------------

async def test_join_page(world: World) -> None:
    token = world.links["X170102"]
    status, html, _ = await world.get(f"/join/{token}")
    assert status == 200
    assert "Giấy mời họp trực tuyến" in html and "Xã Thanh Hối" in html
    assert f'href="/join/{token}/room"' in html and "Vào phòng họp" in html
    status, html, _ = await world.get("/join/dci_not-a-real-token")
    assert status == 404 and "Liên kết mời không hợp lệ" in html
    status, html, _ = await world.get("/join/dci_not-a-real-token?lang=en")
    assert "This invitation link is not valid" in html


async def test_closed_meeting_join_link_is_gone(world: World) -> None:
    from meetings.models import MeetingState

    await world.api.services.calendar.set_state(world.meeting_id, MeetingState.CLOSED)
    status, html, _ = await world.get(f"/join/{world.links['X170101']}")
    assert status == 410 and "Cuộc họp đã kết thúc" in html


async def test_logout_needs_the_form_token(world: World) -> None:
    client = world.api.client
    resp = await client.post("/logout", data={"csrf_token": "wrong"}, headers=world.as_("chair"),
                             allow_redirects=False)
    assert resp.status == 403
    assert (await world.get("/meetings", "chair"))[0] == 200  # still logged in

    good = csrf_token(world.api.services.secret, world.tokens["chair"])
    resp = await client.post("/logout", data={"csrf_token": good}, headers=world.as_("chair"), allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert f'{COOKIE}=""' in resp.headers["Set-Cookie"]
    status, _, resp = await world.get("/meetings", "chair")  # the session is closed server-side
    assert status == 302 and resp.headers["Location"] == "/login"

    status, html, _ = await world.get("/logout", "admin")
    assert status == 200 and 'action="/logout"' in html


async def test_static_files_are_versioned_and_cached(world: World) -> None:
    site = world.api.client.app[SITE]
    url = site.static.url("css/app.css")
    assert re.fullmatch(r"/static/css/app\.css\?v=[0-9a-f]{12}", url)
    resp = await world.api.client.get(url)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    resp = await world.api.client.get("/static/css/app.css")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    resp = await world.api.client.get("/static/js/api.js")
    assert resp.headers["Content-Type"].startswith(("application/javascript", "text/javascript"))
    for bad in ("/static/../server/app.py", "/static/%2e%2e/server/app.py", "/static/nope.js", "/static/js/"):
        assert (await world.api.client.get(bad)).status == 404, bad
    imports = site.static.import_map()["imports"]
    assert imports["/static/js/api.js"] == site.static.url("js/api.js")
    _, html, _ = await world.get("/login")
    assert url in html
