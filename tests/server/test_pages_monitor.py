"""The monitoring page (giám sát) over a real loopback server: who may open it (the meeting's
chair, secretary and admins), every invited point grouped by district, languages, escaping."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Api
from tests.server.page_world import PageWorld, build_page_world

ROLES = ("admin", "chair", "secretary", "delegate", "observer", "outsider")
TITLE = "Hội nghị <b>giao ban</b> & sơ kết quý I"
INVITED = ("T17", "H1701", "X170101", "X170102", "H1702", "X170201")


World = PageWorld


@pytest.fixture
async def world(api: Api) -> World:
    roles = {"admin": "admin", "chair": "chair", "secretary": "secretary", "delegate": "delegate",
             "observer": "observer", "outsider": "chair"}
    points = {"delegate": "X170101", "observer": "X170102"}
    return await build_page_world(
        api,
        points=[("T17", "Tỉnh Hòa Bình", "province", None), ("H1701", "Huyện Tân Lạc", "district", "T17"),
                ("X170101", "Xã Đông Lai", "commune", "H1701"),
                ("X170102", "Xã <i>Thanh Hối</i>", "commune", "H1701"),
                ("H1702", "Huyện Mai Châu", "district", "T17"), ("X170201", "Xã Vạn Mai", "commune", "H1702"),
                ("X170202", "Xã Không Mời", "commune", "H1702")],
        accounts={name: (role, points.get(name), name.title()) for name, role in roles.items()},
        invite=("X170101", "X170102", "H1701", "H1702", "X170201"), title=TITLE)


def json_block(html: str, element_id: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.DOTALL)
    assert match, f"no #{element_id}"
    return json.loads(match.group(1))


def rows(html: str) -> list[str]:
    return re.findall(r'<tr class="monitor-row" data-point-code="([^"]+)"', html)


@pytest.mark.parametrize("role", ["chair", "secretary", "admin"])
async def test_monitor_lists_every_invited_point(world: World, role: str) -> None:
    status, html, resp = await world.get(f"/meetings/{world.meeting_id}/monitor", role)
    assert status == 200, html
    assert sorted(rows(html)) == sorted(INVITED) and "X170202" not in html
    # grouped by district like the meeting page: the province level first, then each district
    groups = re.findall(r'<section class="card monitor-group" data-group="([^"]*)"', html)
    assert groups == ["", "H1701", "H1702"]
    assert rows(html) == ["T17", "H1701", "X170101", "X170102", "H1702", "X170201"]
    data = json_block(html, "monitor-data")
    assert data["meeting_id"] == world.meeting_id
    assert [p["code"] for p in data["points"]] == rows(html)
    assert data["thresholds"] == {"loss_pct": 5.0, "rtt_ms": 400.0, "fps": 10.0}
    for element in ('id="link-alerts"', 'id="alert-list"', 'id="count-online"', 'id="count-degraded"',
                    'id="count-offline"', 'id="count-refused"', 'id="conn-status"'):
        assert element in html, element
    assert "Cảnh báo đường truyền" in html and "Giám sát các điểm cầu" in html
    assert "Trễ khứ hồi (ms)" in html and "Mất gói (%)" in html and "Mất gói trên 5%," in html
    assert "Nhận màn hình chính" in html
    assert re.search(r'id="count-offline">6<', html)
    # server text is escaped, in the page and in the inline JSON
    assert "Hội nghị &lt;b&gt;giao ban&lt;/b&gt; &amp; sơ kết quý I" in html and "<b>giao ban" not in html
    assert "Xã &lt;i&gt;Thanh Hối&lt;/i&gt;" in html and "<i>Thanh" not in html
    assert "js/monitor.js?v=" in html and "css/monitor.css?v=" in html
    assert "nonce-" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"
    # the JS catalog carries the page module's texts
    catalog = json_block(html, "i18n-data")
    assert catalog["messages"]["Refused"] == "Bị từ chối"


async def test_monitor_in_english(world: World) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/monitor?lang=en", "chair")
    assert status == 200
    assert 'lang="en"' in html and "Link alerts" in html and "Receives the main screen" in html
    assert "Loss (%)" in html and "Cảnh báo đường truyền" not in html
    assert sorted(rows(html)) == sorted(INVITED)


@pytest.mark.parametrize("role", ["delegate", "observer", "outsider"])
async def test_monitor_refused_to_others(world: World, role: str) -> None:
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/monitor", role)
    assert status == 403
    assert 'data-error-code="forbidden"' in html and "monitor-data" not in html


async def test_monitor_refused_to_a_point_by_its_link(world: World) -> None:
    token = world.links["X170101"].rsplit("/join/", 1)[-1]
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/monitor", Authorization=f"Bearer {token}")
    assert status in (302, 403)
    assert "monitor-data" not in html


async def test_monitor_logged_out_and_missing(world: World) -> None:
    status, _, resp = await world.get(f"/meetings/{world.meeting_id}/monitor")
    assert status == 302 and resp.headers["Location"].startswith("/login?next=")
    status, _, _ = await world.get("/meetings/999999/monitor", "chair")
    assert status == 404


async def test_console_links_to_the_monitor(world: World) -> None:
    for role in ("chair", "secretary"):
        status, html, _ = await world.get(f"/meetings/{world.meeting_id}/console", role)
        assert status == 200
        assert f'href="/meetings/{world.meeting_id}/monitor"' in html and "Giám sát" in html
