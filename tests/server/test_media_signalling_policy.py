"""Media over the real /ws: audio policy, permissions, bad input, departures, leaks, stats."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from server.config import Config
from server.media_service import MEDIA
from tests.conftest import Api
from tests.server.test_media_kit import MediaPeer, add_point, media_config, set_main, until_frames
from tests.server.test_ws_kit import build_scene, until

CAM = (("camera", 160, 120, 10),)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path, **{"media.max_sdp_bytes": 16384})


async def test_audio_slots_carry_speakers_never_own_audio_nor_muted(api: Api) -> None:
    scene = await build_scene(api)
    d4 = await add_point(scene, "D4", "Huyện Kim Bôi")
    speaker = await MediaPeer.join(scene, scene.d1_device, "D1")
    listener = await MediaPeer.join(scene, scene.d2_device, "D2")
    silent = await MediaPeer.join(scene, d4, "D4")
    peers = [speaker, listener, silent]
    try:
        await set_main(scene, "D2")  # the listener is on the main screen itself
        await speaker.offer(mic=True, audio=3)
        await silent.offer(mic=True, silent=True, audio=3)
        await listener.offer(cameras=CAM, mic=True, main=1, audio=3)
        # D1 talks (a tone): active speaker, forwarded to D2; D4 is silent; D2 never hears itself
        slots = await listener.slots_where(lambda sl: any(x["point_code"] == "D1" for x in sl))
        assert all(x["point_code"] in (None, "D1") for x in slots if x["kind"] == "audio")
        mid = next(x["mid"] for x in slots if x["point_code"] == "D1")
        await until_frames(listener, mid, more_than=10)
        # D1 and D4 hear the main-screen point D2 (ranked first; a slot already carrying a
        # speaker keeps it, so D2 may sit in any audio slot); D1 never hears itself
        for peer in (speaker, silent):
            got = await peer.slots_where(lambda sl: any(x["point_code"] == "D2" for x in sl))
            assert [x["kind"] for x in got if x["point_code"] == "D2"] == ["audio"]
        assert all(x["point_code"] != "D1" for x in speaker.latest_slots())
        await asyncio.sleep(1.0)
        assert all(x["point_code"] != "D4" for x in listener.latest_slots())
        # the chair mutes D1: its audio leaves every slot
        mark = listener.inbox.mark()
        resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/points/D1/mute",
                                     json={"muted": True}, headers=api.bearer(scene.chair))
        assert resp.status == 200, await resp.text()
        await listener.inbox.wait(lambda m: m.get("type") == "media.slots" and all(
            x["point_code"] != "D1" for x in m["slots"]), since=mark)
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_observer_may_not_publish_and_hostile_sdp_is_refused(api: Api) -> None:
    scene = await build_scene(api)
    ws = await scene.peer(scene.observer, "observer")
    await ws.send("media.offer", sdp="v=0", id=1)
    await ws.error("not_joined")
    # the observer's point D2 is invited: it joins, but may only receive
    await ws.join(scene.meeting_id)
    from tests.server.test_media_kit import Inbox

    peer = MediaPeer(ws, Inbox(ws))
    try:
        peer.add(cameras=CAM)
        sdp, tracks = await peer.make_offer()
        await ws.send("media.offer", sdp=sdp, tracks=tracks, id=2)
        err = await peer.inbox.next("error")
        assert err["code"] == "forbidden" and err["re"] == 2
        hostile = (("v=0\r\n" + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n" * 300,
                    "invalid_sdp", "too_many_m_lines"),
                   ("\x00\x01garbage", "invalid_sdp", "invalid_sdp"),
                   ("v=0\r\n" + "a=x\r\n" * 5000, "too_large", "sdp_too_large"))
        for bad, code, media_code in hostile:
            mark = peer.inbox.mark()
            await ws.send("media.offer", sdp=bad, id=3)
            err = await peer.inbox.next("error", since=mark)
            assert err["code"] == code and err["details"]["media_code"] == media_code, err
        mark = peer.inbox.mark()
        await ws.send("media.candidate", candidate="candidate:1 1 udp 1 127.0.0.1 9 typ host",
                      mid="0", id=4)
        assert (await peer.inbox.next("error", since=mark))["code"] == "conflict"
        # the session still works: a receive-only offer is answered
        fresh = MediaPeer(ws, peer.inbox)
        await fresh.offer(main=1, audio=1)
        mark = peer.inbox.mark()
        await ws.send("media.grid", page=0, id=5)
        assert (await peer.inbox.next("error", since=mark))["code"] == "forbidden"
        await ws.send("ping", t=1)
        await peer.inbox.next("pong")
        await fresh.close()
    finally:
        await peer.close()


async def test_publisher_leaving_mid_stream_empties_the_slot(api: Api) -> None:
    scene = await build_scene(api)
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    subs = [await MediaPeer.join(scene, scene.d2_device, f"D2-{i}") for i in range(2)]
    try:
        await publisher.offer(cameras=CAM, mic=True)
        for s in subs:
            await s.offer(main=1, audio=1)
            await until_frames(s, s.mids("main")[0], more_than=2, timeout=15)
        marks = [s.inbox.mark() for s in subs]
        await publisher.close()  # socket and peer gone mid-stream
        for s, mark in zip(subs, marks, strict=True):
            await s.inbox.wait(lambda m: m.get("type") == "media.slots" and all(
                x["point_code"] is None for x in m["slots"]), since=mark)
    finally:
        await asyncio.gather(*(p.close() for p in subs), return_exceptions=True)


def _peer_connections() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))


async def test_join_leave_cycles_leak_no_tasks_or_peers(api: Api) -> None:
    scene = await build_scene(api)
    media = api.client.app[MEDIA]
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    await publisher.offer(cameras=CAM)
    await asyncio.sleep(0.5)
    tasks_before = len(asyncio.all_tasks())
    peers_before = _peer_connections()
    try:
        for i in range(10):
            sub = await MediaPeer.join(scene, scene.d2_device, f"cycle-{i}")
            await sub.offer(main=1)
            if i % 2:
                await until_frames(sub, sub.mids("main")[0], timeout=15)
            else:
                mark = sub.inbox.mark()
                await sub.ws.send("media.leave", id=9)
                assert (await sub.inbox.next("media.closed", since=mark))["reason"] == "left"
            await sub.close()
        meeting = media._meetings[scene.meeting_id].media
        await until(lambda: len(meeting.members) == 1 and len(meeting.room.peers) == 1)
        await asyncio.sleep(1.0)
        del sub
        assert _peer_connections() <= peers_before
        assert len(asyncio.all_tasks()) <= tasks_before + 2, asyncio.all_tasks()
    finally:
        await publisher.close()
    await until(lambda: scene.meeting_id not in media._meetings)


async def test_stats_reach_the_chair_only_and_metrics_export_media(api: Api) -> None:
    scene = await build_scene(api)
    await add_point(scene, "D4", "Huyện Kim Bôi")  # invited, never connects
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    sub = await MediaPeer.join(scene, scene.d2_device, "D2")
    chair = await MediaPeer.join(scene, scene.chair, "chair")
    try:
        await publisher.offer(cameras=CAM, mic=True)
        await sub.offer(main=1, audio=1)
        await until_frames(sub, sub.mids("main")[0], more_than=5, timeout=15)
        stats = await chair.inbox.wait(lambda m: m.get("type") == "media.stats" and any(
            p["point_code"] == "D2" and p["loss_pct"] is not None and p["rtt_ms"] is not None
            for p in m["points"]) and any(
            p["point_code"] == "D1" and p["bitrate_kbps"] for p in m["points"]), 15)
        rows = {p["point_code"]: p for p in stats["points"]}
        assert rows["D1"]["publishing"] and rows["D1"]["bitrate_kbps"] > 0
        assert rows["D1"]["fps"] is not None and rows["D1"]["fps"] > 0
        assert rows["D2"]["receives_main"] and rows["D2"]["rendition"] == "camera"
        assert rows["D2"]["rtt_ms"] is not None and rows["D2"]["online"]
        assert rows["D4"]["online"] is False and rows["D4"]["label"] == "Huyện Kim Bôi"
        assert "D3" not in rows  # not invited
        assert not sub.inbox.of_type("media.stats") and not publisher.inbox.of_type("media.stats")
        text = await (await api.client.get("/metrics")).text()
        meeting = str(scene.meeting_id)
        assert f'diemcau_media_publishers{{meeting="{meeting}"}} 1.0' in text
        assert f'diemcau_media_subscribers{{meeting="{meeting}"}} 2.0' in text
        assert f'diemcau_media_point_loss_ratio{{meeting="{meeting}",point="D2"}}' in text
        forwarded = [line for line in text.splitlines()
                     if line.startswith("diemcau_media_forwarded_packets_total ")]
        assert forwarded and float(forwarded[0].split()[1]) > 0
        # the monitoring page's other columns too, per point
        def value(name: str, point: str, extra: str = "") -> float:
            prefix = f'{name}{{meeting="{meeting}",point="{point}"{extra}}} '
            return float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[-1])

        assert value("diemcau_media_point_online", "D2") == 1 and value("diemcau_media_point_online", "D4") == 0
        assert value("diemcau_media_point_bitrate_bps", "D1") > 0 and value("diemcau_media_point_fps", "D1") > 0
        assert value("diemcau_media_point_receives_main", "D2") == 1
        assert value("diemcau_media_point_rendition", "D2", ',rendition="camera"') == 1
        assert f'diemcau_media_point_loss_ratio{{meeting="{meeting}",point="D4"}}' not in text  # unknown
        # D2 leaves: it is offline, and none of its link figures stays behind as if current
        await sub.close()
        await chair.inbox.wait(lambda m: m.get("type") == "media.stats" and any(
            p["point_code"] == "D2" and not p["online"] for p in m["points"]), 15)
        text = await (await api.client.get("/metrics")).text()
        assert value("diemcau_media_point_online", "D2") == 0
        assert value("diemcau_media_point_receives_main", "D2") == 0
        for gone in ("diemcau_media_point_loss_ratio", "diemcau_media_point_rtt_seconds",
                     "diemcau_media_point_bitrate_bps", "diemcau_media_point_rendition"):
            assert f'{gone}{{meeting="{meeting}",point="D2"' not in text, gone
        # The node's own load rides along: a stalled server loop is reported as an overload.
        assert set(stats["server"]) == {"stalls", "lag_max_ms", "seconds", "overloaded"}
        mark = chair.inbox.mark()
        time.sleep(0.15)  # noqa: ASYNC251 - stops the server's loop (same loop in this test)
        overloaded = await chair.inbox.wait(lambda m: m.get("type") == "media.stats"
                                            and m["server"]["overloaded"], 10, since=mark)
        assert overloaded["server"]["stalls"] >= 1 and overloaded["server"]["lag_max_ms"] >= 100
        text = await (await api.client.get("/metrics")).text()
        assert 'diemcau_event_loop_stalls_total{process="server"}' in text
    finally:
        await asyncio.gather(publisher.close(), sub.close(), chair.close(),
                             return_exceptions=True)


async def test_removed_point_and_closed_meeting_close_media(api: Api) -> None:
    from meetings.models import MeetingState

    scene = await build_scene(api)
    media = api.client.app[MEDIA]
    d1 = await MediaPeer.join(scene, scene.d1_device, "D1")
    d2 = await MediaPeer.join(scene, scene.d2_device, "D2")
    try:
        await d1.offer(cameras=CAM, main=1)
        await d2.offer(cameras=CAM, main=1)
        resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/points/D1/remove",
                                     headers=api.bearer(scene.chair))
        assert resp.status == 200, await resp.text()
        # the removed point's session ends (docs/protocol.md: media.closed "removed" may come
        # first or not at all — two bus subscriptions race); its peer is gone from the meeting
        ended = await d1.inbox.next("session.ended")
        assert (ended["reason"], ended["code"]) == ("removed", "point_removed")
        await until(lambda: all(m.point_code != "D1" for e in media._meetings.values()
                                for m in e.media.members.values()))
        await api.services.calendar.set_state(scene.meeting_id, MeetingState.OPEN)
        await api.services.calendar.set_state(scene.meeting_id, MeetingState.CLOSED)
        assert (await d2.inbox.next("media.closed"))["reason"] == "meeting_closed"
        await until(lambda: scene.meeting_id not in media._meetings)
    finally:
        await asyncio.gather(d1.close(), d2.close(), return_exceptions=True)


async def test_a_resumed_session_gets_its_media_state_again(api: Api) -> None:
    from tests.server.test_media_kit import Inbox

    scene = await build_scene(api)
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    sub = await MediaPeer.join(scene, scene.d2_device, "D2")
    try:
        await publisher.offer(cameras=CAM)
        await sub.offer(main=1)
        await until_frames(sub, sub.mids("main")[0], more_than=2, timeout=15)
        await sub.inbox.close()
        sub.ws.drop()  # the socket dies; the peer connection does not
        ws, reply = await sub.ws.resume(api.client, "D2-again")
        assert reply["type"] == "resumed", reply
        inbox = Inbox(ws)
        assert (await inbox.next("media.main"))["point_code"] == "D1"
        slots = (await inbox.next("media.slots"))["slots"]
        assert slots[0]["point_code"] == "D1"
        frames = sub.counters[sub.mids("main")[0]].frames
        await until_frames(sub, sub.mids("main")[0], more_than=frames + 2, timeout=10)
        await inbox.close()
        await ws.close()
    finally:
        await asyncio.gather(publisher.close(), sub.close(), return_exceptions=True)
