"""Content sharing over the real app: who may share (staff, the point holding the floor), the
chair's layout, stopping and the sharer leaving give the previous main screen back, and the
events reach the other sessions. Real aiortc clients publish the ``screen`` m-line and receive
``main`` / ``content`` slots over the real /ws."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from server.config import Config
from server.media_service import MEDIA
from tests.conftest import Api
from tests.server.test_media_kit import MediaPeer, media_config, set_main, until_frames
from tests.server.test_ws_kit import build_scene

CAM = (("camera", 96, 54, 10),)
SCREEN = (("screen", 160, 90, 10),)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path)


def share_url(scene: Any, tail: str = "") -> str:
    return f"/api/meetings/{scene.meeting_id}/share{tail}"


async def start(scene: Any, token: str, **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await scene.api.client.post(share_url(scene), json=body, headers=scene.api.bearer(token))
    return resp.status, await resp.json()


async def stop(scene: Any, token: str) -> int:
    resp = await scene.api.client.delete(share_url(scene), headers=scene.api.bearer(token))
    return resp.status


def share_event(msg: dict[str, Any], **match: Any) -> bool:
    event = msg.get("event") or {}
    return msg.get("type") == "event" and event.get("type") == "share.changed" and all(
        event.get(k) == v for k, v in match.items())


async def test_who_may_share_and_the_chairs_layout(api: Api) -> None:
    scene = await build_scene(api)
    # no media needed for the permission rules
    status, body = await start(scene, scene.delegate)
    assert status == 403 and body["error"]["code"] == "not_floor_holder", body
    status, body = await start(scene, scene.d1_device)
    assert status == 403 and body["error"]["code"] == "not_floor_holder"
    status, body = await start(scene, scene.observer)
    assert status == 403 and body["error"]["code"] == "forbidden"  # observers never present
    status, body = await start(scene, scene.outsider)
    assert status == 403
    # the chair gives D1 the floor: D1's device (and its delegate) may share now
    resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/floor/grant",
                                 json={"point_code": "D1"}, headers=api.bearer(scene.chair))
    assert resp.status == 200
    status, body = await start(scene, scene.d1_device, session="abc")
    assert status == 201 and body["via_floor"] and body["point_code"] == "D1", body
    assert body["layout"] == "main"
    # someone else may not take over while D1 shares
    status, body = await start(scene, scene.chair)
    assert status == 409 and body["error"]["code"] == "share_in_progress"
    resp = await api.client.get(share_url(scene), headers=api.bearer(scene.d2_device))
    assert (await resp.json())["active"] is True
    floor = await (await api.client.get(f"/api/meetings/{scene.meeting_id}/floor",
                                        headers=api.bearer(scene.chair))).json()
    assert floor["main_screen"]["reason"] == "share"
    # layout: the chair only
    resp = await api.client.put(share_url(scene, "/layout"), json={"layout": "beside"},
                                headers=api.bearer(scene.delegate))
    assert resp.status == 403
    resp = await api.client.put(share_url(scene, "/layout"), json={"layout": "sideways"},
                                headers=api.bearer(scene.chair))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_field"
    resp = await api.client.put(share_url(scene, "/layout"), json={"layout": "beside"},
                                headers=api.bearer(scene.chair))
    assert resp.status == 200 and (await resp.json())["layout"] == "beside"
    floor = await (await api.client.get(f"/api/meetings/{scene.meeting_id}/floor",
                                        headers=api.bearer(scene.chair))).json()
    assert floor["main_screen"] == {"point_code": "D1", "label": "Huyện Lạc Sơn", "reason": "chair"}
    # another point may not stop it; the floor moving on ends a share allowed by the floor
    assert await stop(scene, scene.d2_device) == 403
    resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/floor/revoke",
                                 headers=api.bearer(scene.chair))
    assert resp.status == 200
    assert (await (await api.client.get(share_url(scene), headers=api.bearer(scene.chair)))
            .json())["active"] is False
    assert await stop(scene, scene.chair) == 404
    # staff share without the floor; the layout chosen before is kept
    status, body = await start(scene, scene.chair)
    assert status == 201 and body["layout"] == "beside" and not body["via_floor"]
    assert await stop(scene, scene.chair) == 204


async def test_share_takes_the_main_screen_and_stopping_or_leaving_gives_it_back(api: Api) -> None:
    scene = await build_scene(api)
    await set_main(scene, "D2")
    d2 = await MediaPeer.join(scene, scene.d2_device, "D2 camera")
    sharer = await MediaPeer.join(scene, scene.chair, "chair sharing")
    viewer = await MediaPeer.join(scene, scene.d1_device, "D1 viewer")
    peers = [d2, sharer, viewer]
    try:
        await d2.offer(cameras=CAM)
        await sharer.offer(cameras=SCREEN)
        await viewer.offer(main=1)
        main_mid = viewer.mids("main")[0]
        await until_frames(viewer, main_mid, more_than=3, size=(96, 54), timeout=15)
        # the chair shares: the viewer's main slot carries the screen, labelled "screen"
        mark = viewer.inbox.mark()
        status, body = await start(scene, scene.chair, session=sharer.ws.welcome["session"])
        assert status == 201, body
        await viewer.inbox.wait(lambda m: share_event(m, active=True, layout="main"), since=mark)
        main = await viewer.inbox.next("media.main", since=mark, reason="share")
        assert main["label"] == body["label"]
        slots = await viewer.slots_where(lambda sl: sl[0]["rendition"] == "screen")
        assert slots[0]["role"] == "main"
        await until_frames(viewer, main_mid, size=(160, 90), timeout=15)
        media = api.client.app[MEDIA]._meetings[scene.meeting_id].media
        assert media.main_video() == f"{sharer.ws.welcome['session']}:{sharer.mids('screen')[0]}"
        # the sharer's own main slot stays empty (its screen is shown locally)
        own = await sharer.inbox.next("media.main", reason="share")
        assert own["point_code"] is None
        # stopping gives the previous main screen (D2, chosen by the chair) back
        mark = viewer.inbox.mark()
        assert await stop(scene, scene.chair) == 204
        await viewer.inbox.wait(lambda m: share_event(m, active=False, reason="stopped"), since=mark)
        await viewer.inbox.next("media.main", since=mark, point_code="D2", reason="chair")
        await viewer.slots_where(lambda sl: sl[0]["point_code"] == "D2" and sl[0]["rendition"] == "camera")
        frames = viewer.counters[main_mid].frames
        await until_frames(viewer, main_mid, more_than=frames + 3, timeout=15)
        # again, then the sharer leaves its media: the share ends, D2 is back
        status, _ = await start(scene, scene.chair, session=sharer.ws.welcome["session"])
        assert status == 201
        await viewer.slots_where(lambda sl: sl[0]["rendition"] == "screen")
        mark = viewer.inbox.mark()
        await sharer.ws.send("media.leave", id=900)
        await viewer.inbox.wait(lambda m: share_event(m, active=False, reason="left"), since=mark)
        await viewer.inbox.next("media.main", since=mark, point_code="D2")
        await viewer.slots_where(lambda sl: sl[0]["point_code"] == "D2")
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_beside_layout_fills_the_content_slot_and_the_floor_holder_shares(api: Api) -> None:
    scene = await build_scene(api)
    resp = await api.client.put(share_url(scene, "/layout"), json={"layout": "beside"},
                                headers=api.bearer(scene.chair))
    assert resp.status == 200
    resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/floor/grant",
                                 json={"point_code": "D1"}, headers=api.bearer(scene.chair))
    assert resp.status == 200
    speaker = await MediaPeer.join(scene, scene.d1_device, "D1 speaker")
    viewer = await MediaPeer.join(scene, scene.d2_device, "D2 viewer")
    peers = [speaker, viewer]
    try:
        await speaker.offer(cameras=CAM + SCREEN)
        await viewer.offer(main=1)
        # a content slot: offered as a recvonly video m-line with role "content"
        await _offer_content(viewer)
        status, body = await start(scene, scene.d1_device, session=speaker.ws.welcome["session"])
        assert status == 201 and body["layout"] == "beside"
        slots = await viewer.slots_where(lambda sl: any(
            x["role"] == "content" and x["rendition"] == "screen" for x in sl))
        main = next(x for x in slots if x["role"] == "main")
        assert main["point_code"] == "D1" and main["rendition"] == "camera"
        content_mid = next(x["mid"] for x in slots if x["role"] == "content")
        await until_frames(viewer, content_mid, size=(160, 90), timeout=15)
        await until_frames(viewer, viewer.mids("main")[0], size=(96, 54), timeout=15)
        # the chair moves it to the main screen: the content slot empties
        resp = await api.client.put(share_url(scene, "/layout"), json={"layout": "main"},
                                    headers=api.bearer(scene.chair))
        assert resp.status == 200
        slots = await viewer.slots_where(lambda sl: any(
            x["role"] == "main" and x["rendition"] == "screen" for x in sl))
        assert next(x for x in slots if x["role"] == "content")["point_code"] is None
        # the sharer leaves the meeting: its media and the share end
        mark = viewer.inbox.mark()
        await speaker.ws.send("leave", id=901)
        await viewer.inbox.wait(lambda m: share_event(m, active=False), since=mark, timeout=30)
        await viewer.slots_where(lambda sl: all(x["rendition"] != "screen" for x in sl), timeout=15)
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def _offer_content(peer: MediaPeer) -> None:
    """Renegotiate with one more recvonly video m-line whose role is ``content``."""
    peer._pending(peer.pc.addTransceiver("video", direction="recvonly"), "content")
    await peer.offer()
