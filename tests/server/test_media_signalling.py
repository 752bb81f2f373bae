"""Media over the real /ws: negotiation, the main screen, fan-out and the chair's command.

Real app on loopback, real aiortc clients on 127.0.0.1 (``media.host_addresses``), tiny
synthetic cameras. See tests/server/test_media_kit.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.config import Config
from server.media_service import MEDIA
from tests.conftest import Api
from tests.server.test_media_kit import MediaPeer, add_point, media_config, set_main, until_frames
from tests.server.test_ws_kit import build_scene

CAM = (("camera", 160, 120, 10),)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path)


async def test_publisher_reaches_ten_subscribers_through_ws(api: Api) -> None:
    scene = await build_scene(api)
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    subscribers = [await MediaPeer.join(scene, scene.d2_device, f"D2-{i}") for i in range(10)]
    peers = [publisher, *subscribers]
    try:
        await publisher.offer(cameras=CAM, mic=True)
        main = await publisher.inbox.next("media.main")
        assert main["point_code"] == "D1" and main["reason"] == "chair"
        await asyncio.gather(*(s.offer(main=1, audio=1) for s in subscribers))
        for s in subscribers:
            mid = s.mids("main")[0]
            slots = await s.slots_where(lambda sl, mid=mid: any(
                x["mid"] == mid and x["point_code"] == "D1" for x in sl))
            main_slot = next(x for x in slots if x["mid"] == mid)
            assert main_slot["role"] == "main" and main_slot["rendition"] == "camera"
            assert main_slot["label"] == "Huyện Lạc Sơn"
        await asyncio.gather(*(until_frames(s, s.mids("main")[0], more_than=3, size=(160, 120),
                                            timeout=20) for s in subscribers))
        media = api.client.app[MEDIA]
        meeting = media._meetings[scene.meeting_id].media
        assert len(meeting.members) == 11
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_set_main_screen_switches_every_subscriber(api: Api) -> None:
    scene = await build_scene(api)
    d4 = await add_point(scene, "D4", "Huyện Kim Bôi")
    d1 = await MediaPeer.join(scene, scene.d1_device, "D1")
    d2 = await MediaPeer.join(scene, scene.d2_device, "D2")
    subs = [await MediaPeer.join(scene, d4, "D4"), await MediaPeer.join(scene, scene.chair, "chair")]
    peers = [d1, d2, *subs]
    try:
        await d1.offer(cameras=(("camera", 160, 120, 10),), main=1)
        await d2.offer(cameras=(("camera", 176, 144, 10),), main=1)
        for s in subs:
            await s.offer(main=1)
        answer = await set_main(scene, "D1")
        assert answer == {"point_code": "D1", "label": "Huyện Lạc Sơn", "reason": "chair"}
        for s in [*subs, d2]:
            await until_frames(s, s.mids("main")[0], size=(160, 120), timeout=15)
        marks = {id(s): s.inbox.mark() for s in [*subs, d1]}
        await set_main(scene, "D2")
        for s in [*subs, d1]:
            msg = await s.inbox.next("media.main", since=marks[id(s)])
            assert msg["point_code"] == "D2" and msg["reason"] == "chair"
            mid = s.mids("main")[0]
            await s.inbox.wait(lambda m, mid=mid: m.get("type") == "media.slots" and any(
                x["mid"] == mid and x["point_code"] == "D2" for x in m["slots"]),
                since=marks[id(s)])
            await until_frames(s, mid, size=(176, 144), timeout=15)
        # D2 is on the main screen itself: its own main slot carries nothing
        assert d2.slot(d2.mids("main")[0])["point_code"] is None
        # only the chair may do it; an uninvited point is refused
        resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/main-screen",
                                     json={"point_code": "D1"}, headers=api.bearer(scene.delegate))
        assert resp.status == 403
        resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/main-screen",
                                     json={"point_code": "D3"}, headers=api.bearer(scene.chair))
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_invited"
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_floor_grant_moves_the_main_screen(api: Api) -> None:
    """The conduct domain's main_screen.changed (floor grant) drives the main slots."""
    scene = await build_scene(api)
    d1 = await MediaPeer.join(scene, scene.d1_device, "D1")
    d2 = await MediaPeer.join(scene, scene.d2_device, "D2")
    try:
        await d1.offer(cameras=CAM)
        await d2.offer(main=1)
        mark = d2.inbox.mark()
        resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/floor/grant",
                                     json={"point_code": "D1"}, headers=api.bearer(scene.chair))
        assert resp.status == 200, await resp.text()
        msg = await d2.inbox.next("media.main", since=mark)
        assert msg["point_code"] == "D1" and msg["label"] == "Huyện Lạc Sơn"
        await until_frames(d2, d2.mids("main")[0], size=(160, 120), timeout=15)
    finally:
        await asyncio.gather(d1.close(), d2.close(), return_exceptions=True)


async def test_chair_grid_pages_through_publishing_points(api: Api) -> None:
    scene = await build_scene(api)
    d4 = await add_point(scene, "D4", "Huyện Kim Bôi")
    pubs = [await MediaPeer.join(scene, token, code)
            for token, code in ((scene.d1_device, "D1"), (scene.d2_device, "D2"), (d4, "D4"))]
    chair = await MediaPeer.join(scene, scene.chair, "chair")
    try:
        for p in pubs:
            await p.offer(cameras=(("camera", 160, 120, 5), ("camera-thumb", 80, 60, 5)))
        await chair.offer(grid=2)
        grid = chair.mids("grid")
        slots = await chair.slots_where(lambda sl: [x["point_code"] for x in sl] == ["D1", "D2"])
        assert {x["role"] for x in slots} == {"grid"}
        assert {x["rendition"] for x in slots} == {"camera-thumb"}
        for mid in grid:
            await until_frames(chair, mid, size=(80, 60), timeout=15)
        await chair.ws.send("media.grid", page=1, page_size=2)
        slots = await chair.slots_where(lambda sl: [x["point_code"] for x in sl] == ["D4", None])
        await until_frames(chair, grid[0], more_than=chair.counters[grid[0]].frames + 2,
                           timeout=15)
        # a point may not ask for grid slots
        peer = pubs[0]
        peer.add(grid=1)
        sdp, tracks = await peer.make_offer()
        mark = peer.inbox.mark()
        await peer.ws.send("media.offer", sdp=sdp, tracks=tracks, id=77)
        assert (await peer.inbox.next("error", since=mark))["code"] == "forbidden"
    finally:
        await asyncio.gather(*(p.close() for p in [*pubs, chair]), return_exceptions=True)
