"""Media worker processes (``media.workers``) through the real app: participants' peers live
in separate processes, the slot policy stays in the server process.

Real app on loopback, real aiortc clients on 127.0.0.1, real worker processes (no mocks):
a meeting spread over two workers decodes everywhere; a late joiner on the other worker gets
a keyframe through the server process; a SIGKILLed worker fails only its own sessions and
is replaced; join/leave cycles leave nothing behind and shutdown reaps every worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from media.remote import FORWARD_GRACE_S, RoomProxy
from server.config import Config
from server.media_service import MEDIA, MediaService
from tests.conftest import Api
from tests.server.test_media_kit import MediaPeer, media_config, set_main, until_frames
from tests.server.test_ws_kit import build_scene, until

CAM = (("camera", 160, 120, 10),)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path, **{"media.workers": 2})


def _room(media: MediaService, meeting_id: int) -> RoomProxy:
    room = media._meetings[meeting_id].media.room
    assert isinstance(room, RoomProxy)
    return room


def _worker_pids(room: RoomProxy) -> list[int | None]:
    """Worker pid of every member, in the order they offered."""
    return [p.worker_pid for p in room.peers.values()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_meeting_spread_over_two_workers_decodes_everywhere(api: Api) -> None:
    scene = await build_scene(api)
    media = api.client.app[MEDIA]
    assert media.pool is None  # workers start with the first media.offer, not with the app
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    subs = [await MediaPeer.join(scene, scene.d2_device, f"D2-{i}") for i in range(4)]
    try:
        await publisher.offer(cameras=CAM, mic=True)
        for s in subs:
            await s.offer(main=1, audio=1)
        await asyncio.gather(*(until_frames(s, s.mids("main")[0], more_than=5,
                                            size=(160, 120), timeout=20) for s in subs))
        await asyncio.gather(*(until_frames(s, s.mids("audio")[0], more_than=5, timeout=20)
                               for s in subs))
        assert media.pool is not None and media.pool.size == 2
        room = _room(media, scene.meeting_id)
        pids = _worker_pids(room)
        assert len(set(pids)) == 2 and None not in pids
        assert {w.pid for w in media.pool.workers} == set(pids)
        assert all(pid != os.getpid() and _alive(pid) for pid in pids if pid)
        # The publisher's camera goes down the other worker's link once, whatever the number
        # of subscribers there; subscribers on the publisher's worker are served locally.
        publisher_pid = pids[0]
        other = next(pid for pid in pids if pid != publisher_pid)
        camera = next(sid for sid, s in room.sources.items() if s.kind == "video")
        remote_subs = sum(1 for pid in pids[1:] if pid == other)
        assert room.forwards[(other, camera)] == remote_subs >= 2
        assert not any(pid == publisher_pid for pid, _ in room.forwards)
        # Stats mirrored from the workers reach the policy's view of the slots.
        member = list(media._meetings[scene.meeting_id].media.members.values())[1]
        sink = member.peer.sinks[subs[0].mids("main")[0]]
        assert await _until(lambda: sink.sending and sink.stats.packets > 0)
        assert room.sources[camera].stats.frames > 0
        # Both processes' event-loop lag reach /metrics (one report a second each).
        assert await _until(lambda: all(w.loop_lag_s > 0 for w in media.pool.workers), 5)
        text = await (await api.client.get("/metrics")).text()
        for process in ("server", "media_worker"):
            count = next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(
                f'diemcau_event_loop_lag_seconds_count{{process="{process}"}}'))
            assert count >= 1
    finally:
        await asyncio.gather(*(p.close() for p in [publisher, *subs]), return_exceptions=True)


async def _until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


async def test_a_late_joiner_on_another_worker_gets_a_keyframe(api: Api) -> None:
    """Publisher on worker A; a subscriber on worker B already watches (the camera is
    forwarded there); a late joiner on B needs a keyframe: its request crosses B's link to
    the server process and A's link to the publisher."""
    scene = await build_scene(api)
    media = api.client.app[MEDIA]
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    names = ("early", "filler", "late")
    subs = {n: await MediaPeer.join(scene, scene.d2_device, n) for n in names}
    try:
        await publisher.offer(cameras=CAM)
        await subs["early"].offer(main=1)  # worker B (empty)
        await subs["filler"].offer(audio=1)  # a tie: worker A
        await until_frames(subs["early"], subs["early"].mids("main")[0], more_than=10,
                           timeout=20)
        room = _room(media, scene.meeting_id)
        camera = next(s for s in room.sources.values() if s.kind == "video")
        await asyncio.sleep(1.5)  # aiortc encoders send no keyframe unless asked
        asked = camera.stats.keyframe_requests_sent
        started = time.monotonic()
        await subs["late"].offer(main=1)  # worker B again (A has 2 peers)
        a, b, filler, late = _worker_pids(room)
        assert a != b and filler == a and late == b
        late_mid = subs["late"].mids("main")[0]
        await until_frames(subs["late"], late_mid, timeout=10)
        first = subs["late"].counters[late_mid].first_at
        assert first is not None and first - started < 3.0, first - started
        assert await _until(lambda: camera.stats.keyframe_requests_sent > asked)
        assert room.forwards[(b, camera.source_id)] == 2  # still once down B's link
    finally:
        await asyncio.gather(publisher.close(), *(s.close() for s in subs.values()),
                             return_exceptions=True)


async def test_a_killed_worker_fails_its_sessions_only_and_is_replaced(api: Api) -> None:
    scene = await build_scene(api)
    media = api.client.app[MEDIA]
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    victim = await MediaPeer.join(scene, scene.d2_device, "victim")
    survivor = await MediaPeer.join(scene, scene.d2_device, "survivor")
    peers = [publisher, victim, survivor]
    try:
        await publisher.offer(cameras=CAM, mic=True)
        await victim.offer(main=1, audio=1)  # the other worker
        await survivor.offer(main=1, audio=1)  # a tie: the publisher's worker
        for s in (victim, survivor):
            await until_frames(s, s.mids("main")[0], more_than=3, timeout=20)
        room = _room(media, scene.meeting_id)
        pool = media.pool
        assert pool is not None
        pids = _worker_pids(room)
        assert pids[1] != pids[0] and pids[2] == pids[0]
        doomed = pids[1]
        assert doomed is not None
        mark = victim.inbox.mark()
        os.kill(doomed, signal.SIGKILL)
        closed = await victim.inbox.next("media.closed", since=mark, timeout=10)
        assert closed["reason"] == "failed"
        assert await _until(lambda: pool.replaced == 1 and len(pool.workers) == 2
                            and all(w.alive for w in pool.workers), 15)
        assert doomed not in {w.pid for w in pool.workers}
        assert not _alive(doomed)
        # the others keep receiving
        frames = survivor.counters[survivor.mids("main")[0]].frames
        await until_frames(survivor, survivor.mids("main")[0], more_than=frames + 5, timeout=10)
        assert not [m for m in survivor.inbox.messages if m.get("type") == "media.closed"]
        # the failed session offers again (a new peer connection) and is served again
        for task in victim.tasks:
            task.cancel()
        await victim.pc.close()
        fresh = MediaPeer(victim.ws, victim.inbox)
        peers.append(fresh)
        await fresh.offer(main=1)
        await until_frames(fresh, fresh.mids("main")[0], more_than=3, timeout=20)
        assert None not in _worker_pids(room) and doomed not in _worker_pids(room)
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_join_leave_cycles_leave_nothing_and_shutdown_reaps_workers(api: Api) -> None:
    scene = await build_scene(api)
    media = api.client.app[MEDIA]
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    try:
        await publisher.offer(cameras=CAM, mic=True)
        room = _room(media, scene.meeting_id)
        pool = media.pool
        assert pool is not None
        await asyncio.sleep(0.5)
        tasks_before = len(asyncio.all_tasks())
        for i in range(8):
            subs = [await MediaPeer.join(scene, scene.d2_device, f"cycle-{i}-{j}")
                    for j in range(2)]
            for s in subs:
                await s.offer(main=1, audio=1)
            assert len(set(_worker_pids(room))) == 2
            if i % 2:
                await asyncio.gather(*(until_frames(s, s.mids("main")[0], timeout=15)
                                       for s in subs))
            else:
                mark = subs[0].inbox.mark()
                await subs[0].ws.send("media.leave", id=9)
                await subs[0].inbox.next("media.closed", since=mark)
            for s in subs:
                await s.close()
        await until(lambda: len(room.peers) == 1)
        await asyncio.sleep(FORWARD_GRACE_S + 0.5)
        assert room.forwards == {}
        assert sum(w.peers for w in pool.workers) == 1
        (publisher_pid,) = _worker_pids(room)
        for worker in pool.workers:  # the workers hold the publisher's peer and nothing else
            stats = await worker.process.call("stats")
            assert sum(r["peers"] for r in stats.values()) == (worker.pid == publisher_pid)
            assert worker.endpoint.sender.forwarded == {}  # nothing forwarded down any more
        assert len(asyncio.all_tasks()) <= tasks_before + 2, asyncio.all_tasks()
    finally:
        await publisher.close()
    await until(lambda: scene.meeting_id not in media._meetings)
    processes = [w.process.process for w in pool.workers]
    await media.close()  # what the app does at shutdown (and again, harmlessly, after the test)
    assert all(p.returncode is not None for p in processes)
    assert not any(_alive(p.pid) for p in processes)
    assert pool.closed and pool.workers == []
