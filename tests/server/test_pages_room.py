"""The video room page (/meetings/{id}/video) and the video block of a point's room, over a real
loopback server: who may open it, what the chair gets (grid, set main screen), languages, and
ICE servers from the config rendered safely as JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meetings.calendar import MeetingDraft
from server.auth import COOKIE, sign_cookie
from server.pages_room import ice_servers, video_config
from tests.conftest import Api
from tests.server.page_world import PageWorld, build_page_world

ROLES = ("admin", "chair", "secretary", "delegate", "observer", "outsider")
TITLE = "Hội nghị <b>giao ban</b> & sơ kết quý I"


World = PageWorld


@pytest.fixture
async def world(api: Api) -> World:
    points = {"delegate": "X170101", "observer": "X170102", "outsider": "X170103"}
    return await build_page_world(
        api,
        points=[("T17", "Tỉnh Hòa Bình", "province", None), ("H1701", "Huyện Tân Lạc", "district", "T17"),
                ("X170101", "Xã Đông Lai", "commune", "H1701"), ("X170102", "Xã Thanh Hối", "commune", "H1701"),
                ("X170103", "Xã Phong Phú", "commune", "H1701")],
        accounts={role: ("delegate" if role == "outsider" else role, points.get(role), f"Người dùng {role}")
                  for role in ROLES},
        invite=("X170101", "X170102"), title=TITLE)


def video_data(html: str) -> Any:
    match = re.search(r'<script type="application/json" id="video-data">(.*?)</script>', html, re.DOTALL)
    assert match, "no #video-data"
    return json.loads(match.group(1))


async def test_chair_gets_the_grid_and_set_main_screen(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/video", "chair")
    assert status == 200, html
    assert "Phòng họp" in html and "Màn hình chính" in html and "Đưa lên màn hình chính" in html
    assert "Hội nghị &lt;b&gt;giao ban&lt;/b&gt; &amp; sơ kết quý I" in html and "<b>giao ban" not in html
    for element in ('id="video-main"', 'id="video-self"', 'id="video-camera"', 'id="video-mic"',
                    'id="video-mic-toggle"', 'id="video-cam-toggle"', 'id="video-grid"', 'id="video-state"'):
        assert element in html, element
    assert "/static/js/video.js?v=" in html and "/static/css/video.css?v=" in html
    data = video_data(html)
    assert data == {"meeting_id": world.meeting_id, "point_code": "", "via_link": False, "publish": True,
                    "grid": True, "can_set_main": True, "ice_servers": []}


async def test_secretary_sees_the_grid_without_the_main_screen_button(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/video", "secretary")
    assert status == 200, html
    data = video_data(html)
    assert data["grid"] is True and data["can_set_main"] is False
    assert "video-set-main" not in html


@pytest.mark.parametrize("role", ["delegate", "observer"])
async def test_participants_at_invited_points(world: World, role: str) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/video", role)
    assert status == 200, html
    data = video_data(html)
    assert data["grid"] is False and data["can_set_main"] is False
    assert data["point_code"] == {"delegate": "X170101", "observer": "X170102"}[role]
    assert 'id="video-grid"' not in html and "video-set-main" not in html
    # Observers only watch and listen: no camera, mic, toggles or self view.
    assert data["publish"] is (role == "delegate")
    for element in ('id="video-self"', 'id="video-mic-toggle"', 'id="video-cam-toggle"', 'id="video-camera"'):
        assert (element in html) is (role == "delegate"), element


async def test_outsiders_get_403_and_anonymous_the_login(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/video", "outsider")
    assert status == 403
    assert "video-data" not in html
    status, _, _ = await world.get(f"/meetings/{world.meeting_id}/video")
    assert status == 302
    status, _, _ = await world.get("/meetings/99999/video", "chair")
    assert status == 404


async def test_english(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/video?lang=en", "chair")
    assert status == 200
    assert "Main screen" in html and "Put on the main screen" in html and "Turn the microphone off" in html
    assert '<html lang="en">' in html


async def test_meeting_page_links_the_video_room(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}", "delegate")
    assert status == 200
    assert f'href="/meetings/{world.meeting_id}/video"' in html and "Vào phòng họp" in html


async def test_point_room_by_link_has_the_video_block(world: World) -> None:
    link = world.links["X170101"]
    token = link.rsplit("/join/", 1)[-1]
    status, html, _ = await world.get(f"/join/{token}/room")
    assert status == 200, html
    data = video_data(html)
    assert data["via_link"] is True and data["point_code"] == "X170101" and data["grid"] is False
    assert 'id="video-main"' in html and 'id="raise-form"' in html  # the conduct controls stay
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/room", "delegate")
    assert status == 200
    assert video_data(html)["via_link"] is False


def test_ice_servers_normalised() -> None:
    raw = ["stun:stun.example.vn:3478",
           {"urls": ["turn:turn.example.vn:3478?transport=udp"], "username": "u", "credential": "p", "x": 1},
           {"username": "no-urls"}, 42, ""]
    assert ice_servers(raw) == [
        {"urls": "stun:stun.example.vn:3478"},
        {"urls": ["turn:turn.example.vn:3478?transport=udp"], "username": "u", "credential": "p"}]
    assert ice_servers(None) == []
    assert video_config([], 3)["ice_servers"] == []


async def test_ice_servers_rendered_safely(aiohttp_client: Any, tmp_path: Path) -> None:
    """ICE servers from the config reach the page as JSON; a hostile credential cannot break
    out of the ``<script type="application/json">`` block."""
    from server.app import create_app
    from server.keys import SERVICES
    from tests.conftest import make_config

    evil = "x</script><script>alert(1)</script>&'\""
    config = make_config(tmp_path, **{"media.ice_servers": "stun:stun.example.vn:3478,turn:turn.example.vn:3478",
                                      "media.ice_username": "dc<b>", "media.ice_credential": evil})
    client = await aiohttp_client(create_app(config))
    services = client.app[SERVICES]
    await services.registry.create("T17", "Tỉnh Hòa Bình", "province")
    await services.accounts.create_user("chair", "mat-khau-thu-nghiem", "chair", display_name="Chủ trì")
    meeting = await services.calendar.create(MeetingDraft(
        title="Họp", starts_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC), host_point_code="T17",
        chair_username="chair"), created_by=None)
    login = await (await client.post("/api/auth/login", json={"username": "chair", "password": "mat-khau-thu-nghiem"})).json()
    cookie = {"Cookie": f"{COOKIE}={sign_cookie(services.secret, login['token'])}"}
    resp = await client.get(f"/meetings/{meeting.id}/video", headers=cookie)
    html = await resp.text()
    assert resp.status == 200, html
    assert "</script><script>alert(1)" not in html and "<b>" not in html
    assert video_data(html)["ice_servers"] == [
        {"urls": "stun:stun.example.vn:3478"},
        {"urls": "turn:turn.example.vn:3478", "username": "dc<b>", "credential": evil}]
