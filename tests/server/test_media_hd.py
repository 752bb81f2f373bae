"""HD main screen: the main-screen point publishes ``camera-hd`` besides ``camera``,
``camera-low`` and ``camera-thumb``; a subscriber whose link is good is moved up to HD (at a
keyframe), one with a lossy link steps down; nobody ever receives the HD rendition of a point
that is not on the main screen, and the grid stays thumbnail-first. Real aiortc clients over
the real /ws (sizes are small stand-ins: CPU is shared)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from media.renditions import HD_LEVEL, LinkQuality, pick, pick_grid, preference
from server.config import Config
from server.media_service import MEDIA
from tests.conftest import Api
from tests.server.test_media_kit import MediaPeer, media_config, set_main, until_frames
from tests.server.test_media_renditions import heal, lose_incoming
from tests.server.test_ws_kit import build_scene

HD, CAM, LOW, THUMB = (320, 180), (160, 90), (96, 54), (48, 28)
LADDER = (("camera-hd", *HD, 15), ("camera", *CAM, 15), ("camera-low", *LOW, 10),
          ("camera-thumb", *THUMB, 5))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path)


def test_hd_levels_and_grid_choice() -> None:
    ladder = {"camera-hd": "p:0", "camera": "p:1", "camera-low": "p:2", "camera-thumb": "p:3"}
    assert pick(ladder, preference(HD_LEVEL)) == ("camera-hd", "p:0")
    assert pick(ladder, preference(0)) == ("camera", "p:1")
    assert pick_grid(ladder) == ("camera-thumb", "p:3")
    assert pick_grid({"camera-hd": "p:0"}) is None  # a grid tile never carries HD
    link = LinkQuality(recover_reports=2, hold_s=0.0)
    # HD is earned: good reports move a fresh link (level 0) up only when HD is published
    for n in (1, 2, 3):
        assert not link.observe(reports=n, fraction_lost=0.0, remb_bps=None, current_bps=None,
                                higher_bps=None, now=float(n))
    assert link.observe(reports=4, fraction_lost=0.0, remb_bps=None, current_bps=None,
                        higher_bps=None, min_level=HD_LEVEL, now=4.0)
    assert link.level == HD_LEVEL
    assert link.observe(reports=5, fraction_lost=0.3, remb_bps=None, current_bps=None,
                        higher_bps=None, min_level=HD_LEVEL, now=5.0)
    assert link.level == 0
    # a main screen without HD: the level never stays above what is published
    link.level = HD_LEVEL
    link.observe(reports=6, fraction_lost=0.0, remb_bps=None, current_bps=None, higher_bps=None,
                 now=6.0)
    assert link.level == 0


def rendition(peer: MediaPeer) -> object:
    return peer.slot(peer.mids("main")[0])["rendition"]


async def test_main_screen_in_hd_for_good_links_lower_for_lossy_never_hd_of_others(
        api: Api) -> None:
    scene = await build_scene(api)
    await set_main(scene, "D1")
    host = await MediaPeer.join(scene, scene.d1_device, "D1 host")
    other = await MediaPeer.join(scene, scene.d2_device, "D2 publisher")
    good = await MediaPeer.join(scene, scene.d2_device, "good")
    bad = await MediaPeer.join(scene, scene.d2_device, "bad")
    chair = await MediaPeer.join(scene, scene.chair, "chair")
    peers = [host, other, good, bad, chair]
    try:
        await host.offer(cameras=LADDER)
        await other.offer(cameras=LADDER)  # a non-main point with its own HD
        for s in (good, bad):
            await s.offer(main=1)
            await until_frames(s, s.mids("main")[0], more_than=3, timeout=15)
        await chair.offer(grid=2)
        # good links are moved up to the main point's HD after a few good reports
        for s in (good, bad):
            slots = await s.slots_where(lambda sl: sl[0]["rendition"] == "camera-hd", timeout=25)
            assert slots[0]["point_code"] == "D1"
            await until_frames(s, s.mids("main")[0], size=HD, timeout=15)
        # one subscriber's link loses packets: it steps down, the other stays in HD
        lose_incoming(bad, 0.4)
        slots = await bad.slots_where(lambda sl: sl[0]["rendition"] in ("camera", "camera-low"),
                                      timeout=20)
        assert slots[0]["point_code"] == "D1"
        heal(bad)
        await bad.ws.send("media.keyframe", mid=bad.mids("main")[0])
        await until_frames(bad, bad.mids("main")[0], size=CAM, timeout=25)
        assert rendition(good) == "camera-hd"
        # the chair's grid: thumbnails of both points, never an HD rendition
        grid = await chair.slots_where(lambda sl: sum(1 for x in sl if x["point_code"]) == 2)
        assert {x["rendition"] for x in grid} == {"camera-thumb"}
        await until_frames(chair, chair.mids("grid")[0], more_than=2, size=THUMB, timeout=15)
        # the non-main point's HD source was never forwarded to any slot of anyone
        entry = api.client.app[MEDIA]._meetings[scene.meeting_id]
        other_hd = f"{other.ws.welcome['session']}:{other.mids('camera-hd')[0]}"
        assert other_hd in entry.media.room.sources
        assert not entry.media.room.sources[other_hd].sinks
        for peer in peers:
            for message in peer.inbox.of_type("media.slots"):
                for slot in message["slots"]:
                    assert not (slot["point_code"] == "D2" and slot["rendition"] == "camera-hd")
        assert all(HD not in c.sizes for c in chair.counters.values())
        # a recording of the main screen takes its best live rendition
        assert entry.media.main_video() == f"{host.ws.welcome['session']}:{host.mids('camera-hd')[0]}"
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


# --- the bridge agent's HD host (diemcau bridge --hd) ---------------------------------------------

def test_bridge_hd_sources_and_options() -> None:
    from server.bridge.options import AgentError, AgentOptions
    from server.bridge.sources import GatedTrack, PatternCamera, open_sources

    sources = open_sources("testsrc", "none", size=(640, 360), fps=10, hd=True)
    try:
        assert list(sources.tracks) == ["camera-hd", "camera", "camera-low", "camera-thumb"]
        hd = sources.tracks["camera-hd"]
        assert isinstance(hd, GatedTrack) and not hd.is_open  # until on the main screen
        assert all(isinstance(t, PatternCamera) for role, t in sources.tracks.items() if role != "camera-hd")
    finally:
        sources.close()
    with pytest.raises(AgentError):
        AgentOptions(url="http://127.0.0.1:1", token="dcp_x", video_size=(320, 180), hd=True)


async def test_bridge_agent_publishes_hd_that_reaches_a_good_link(api: Api) -> None:
    """``diemcau bridge --hd`` sends camera-hd only while its point is on the main screen (a
    commune uplink does not carry 2 Mbit/s the server would drop): nothing before the chair
    puts it there, HD to a good link once it is, nothing again once it is not."""
    from server.bridge.agent import BridgeAgent
    from server.bridge.options import AgentOptions, ExitCode
    from server.bridge.sources import GatedTrack

    scene = await build_scene(api)
    await set_main(scene, "D2")
    url = str(api.client.make_url("/")).rstrip("/")
    agent = BridgeAgent(AgentOptions(url=url, token=scene.d1_device, meeting_id=scene.meeting_id,
                                     video="testsrc", audio="none", video_size=(640, 360), fps=10,
                                     hd=True, main_slots=0, audio_slots=0, stats_interval_s=0),
                        out=io.StringIO(), patch_ice=False)
    task = asyncio.create_task(agent.run())
    viewer = await MediaPeer.join(scene, scene.d2_device, "viewer")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while agent.link is None or not agent.link.connected.is_set():
            assert loop.time() < deadline and not task.done(), "the HD agent did not connect"
            await asyncio.sleep(0.1)
        roles = [t.role for t in agent.link.offered]
        assert roles[:4] == ["camera-hd", "camera", "camera-low", "camera-thumb"]
        hd = agent.sources.tracks["camera-hd"]
        assert isinstance(hd, GatedTrack)
        camera = agent.sources.tracks["camera"]
        while getattr(camera, "count", 0) < 10:  # 1 s of the 640x360 camera went out ...
            assert loop.time() < deadline
            await asyncio.sleep(0.1)
        assert not hd.is_open and hd.frames == 0  # ... and no HD frame: D2 is on the main screen
        await set_main(scene, "D1")
        await viewer.offer(main=1)
        slots = await viewer.slots_where(lambda sl: sl[0]["rendition"] == "camera-hd", timeout=30)
        assert slots[0]["point_code"] == "D1"
        await until_frames(viewer, viewer.mids("main")[0], size=(640, 360), timeout=15)
        assert hd.is_open and hd.frames > 0
        await set_main(scene, "D2")
        while hd.is_open:
            assert loop.time() < deadline + 20
            await asyncio.sleep(0.05)
        sent = hd.frames
        await asyncio.sleep(0.5)
        assert hd.frames == sent  # closed again: not one more HD frame
    finally:
        agent.stop()
        assert await task is ExitCode.OK
        await viewer.close()


async def test_a_counting_agent_reports_its_link_and_earns_hd(api: Api) -> None:
    """``diemcau bridge --receive-only`` never decodes, so its aiortc receivers send no
    reports: the agent sends its own receiver reports from its counts (offer.py), and its
    main slot moves up to the main point's HD like a decoding client's."""
    from server.bridge.agent import BridgeAgent
    from server.bridge.options import AgentOptions, ExitCode

    scene = await build_scene(api)
    await set_main(scene, "D1")
    host = await MediaPeer.join(scene, scene.d1_device, "D1 host")
    url = str(api.client.make_url("/")).rstrip("/")
    agent = BridgeAgent(AgentOptions(url=url, token=scene.d2_device, meeting_id=scene.meeting_id,
                                     receive_only=True, main_slots=1, audio_slots=0,
                                     stats_interval_s=0),
                        out=io.StringIO(), patch_ice=False)
    task = asyncio.create_task(agent.run())
    try:
        await host.offer(cameras=LADDER)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not any(s.get("rendition") == "camera-hd" for s in agent.slots.values()):
            assert loop.time() < deadline and not task.done(), f"no HD: {agent.slots}"
            await asyncio.sleep(0.2)
        main = next(s for s in agent.slots.values() if s.get("role") == "main")
        assert main["point_code"] == "D1"
        entry = api.client.app[MEDIA]._meetings[scene.meeting_id]
        member = next(m for m in entry.media.members.values() if m.point_code == "D2")
        sink = member.peer.sinks[main["mid"]]
        assert sink.stats.reports >= 4 and (sink.stats.fraction_lost or 0) <= 0.02
    finally:
        agent.stop()
        assert await task is ExitCode.OK
        await host.close()
