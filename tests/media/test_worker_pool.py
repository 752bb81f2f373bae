"""Worker processes under a RoomProxy (media/pool.py, media/remote.py, media/worker.py):
real aiortc clients on 127.0.0.1, real worker processes, no mocks.

A video published in a worker crosses its link to this process only while something here
attaches a sink to it (on demand); so does audio, which otherwise sends only its levels (one
summary per link every few tens of ms, for speaker detection). A subscriber on
another worker gets the source down its own link once per worker; a subscriber on the
publisher's worker is served there; forwards stop after the grace period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from media import MediaConfig, MediaEvent, PeerClosed, SourceAdded, SourceRemoved
from media.pool import WorkerPool
from media.remote import FORWARD_GRACE_S, RoomProxy
from tests.media.harness import Client, DecodeErrorCounter, wait_for


class _Counter:
    """A packet sink that only counts (what a recorder or a meter would be)."""

    def __init__(self) -> None:
        self.packets = 0

    def on_packet(self, source: object, packet: object, ntp_time: int) -> None:
        self.packets += 1

    def on_source_ended(self, source: object) -> None:
        pass


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(MediaConfig(host_addresses=("127.0.0.1",)), 2)
    await p.start()
    try:
        yield p
    finally:
        processes = [w.process.process for w in p.workers]
        await p.close()
        assert all(proc.returncode is not None for proc in processes)


async def test_video_crosses_the_link_only_while_watched(
        pool: WorkerPool, decode_errors: DecodeErrorCounter) -> None:
    events: list[MediaEvent] = []
    room = RoomProxy(pool, "m1", on_event=events.append)
    pub, far, near = Client(room, "pub"), Client(room, "far"), Client(room, "near")  # type: ignore[arg-type]
    try:
        await pub.connect(video=True, audio=True)
        await far.connect(recv_video=1, recv_audio=1)   # the other worker
        await near.connect(recv_video=1)                # a tie: the publisher's worker
        peers = room.peers
        assert peers["pub"].worker is peers["near"].worker is not peers["far"].worker
        video = next(s for s in room.sources.values() if s.kind == "video")
        audio = next(s for s in room.sources.values() if s.kind == "audio")
        assert {e.source_id for e in events if isinstance(e, SourceAdded)} == set(room.sources)
        # nobody watches: the worker counts the video (mirrored stats), the link carries none;
        # of the audio only level summaries come up (heard by a level observer, no packet)
        levels: list[tuple[int, int]] = []
        audio.add_level_observer(lambda level, count: levels.append((level, count)))
        assert await wait_for(lambda: video.stats.frames > 5 and sum(c for _, c in levels) > 20,
                              10)
        assert video.fed_packets == 0 and audio.fed_packets == 0
        assert len(levels) < sum(c for _, c in levels)  # summaries, not one per packet
        # the subscriber on the publisher's worker is served there: still nothing comes up
        room.subscribe("near", video.source_id)
        assert await wait_for(lambda: near.video().frames >= 5, 15)
        assert video.fed_packets == 0 and room.forwards == {}
        # a subscriber on the other worker: the video comes up and goes down its link once
        room.subscribe("far", video.source_id)
        room.subscribe("far", audio.source_id)
        assert await wait_for(lambda: far.video().frames >= 10 and far.audio().frames >= 10, 15)
        far_pid = peers["far"].worker_pid
        assert room.forwards == {(far_pid, video.source_id): 1, (far_pid, audio.source_id): 1}
        assert video.fed_packets > 0
        # a sink attached here (e.g. a recorder) also pulls the video up
        room.unsubscribe("far", "0")
        counter = _Counter()
        video.add_sink(counter)
        await asyncio.sleep(FORWARD_GRACE_S + 0.5)
        assert room.forwards == {(far_pid, audio.source_id): 1}
        assert counter.packets > 0
        video.remove_sink(counter)
        await asyncio.sleep(0.5)
        fed = video.fed_packets
        await asyncio.sleep(1.0)
        assert video.fed_packets <= fed + 5  # demand off: the link went quiet (in-flight only)
        assert decode_errors.count == 0
        # the publisher leaves: its sources end here and in the far worker
        await room.remove_peer("pub")
        assert not room.sources
        assert {e.source_id for e in events if isinstance(e, SourceRemoved)} == {
            video.source_id, audio.source_id}
        assert await wait_for(lambda: room.forwards == {}, 1)
        assert any(isinstance(e, PeerClosed) and e.participant_id == "pub" for e in events)
    finally:
        await asyncio.gather(pub.close(), far.close(), near.close(), return_exceptions=True)
        await room.close()
    assert room.peers == {} and sum(w.peers for w in pool.workers) == 0
    assert all(w.endpoint.sender.forwarded == {} for w in pool.workers)
