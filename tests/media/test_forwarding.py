"""End to end over 127.0.0.1: real aiortc publishers and decoding subscribers through the
server-side peers and the packet forwarder. Counts have generous bounds (2 busy cores)."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref

import pytest
from aiortc import RTCRtpSender

from media import MediaError, MediaEvent, PeerClosed, Room, SlotIdle, SourceRemoved
from media.aiortc_hooks import decoder_running
from media.peer import Peer
from media.sink import Sink
from tests.media.harness import Client, DecodeErrorCounter, wait_for


async def join(room: Room, pid: str, **kwargs: object) -> Client:
    client = Client(room, pid)
    await client.connect(**kwargs)  # type: ignore[arg-type]
    return client


async def join_subscribers(room: Room, n: int, prefix: str = "sub", *, audio: bool = True
                           ) -> list[Client]:
    clients = [await join(room, f"{prefix}{i}", recv_video=1, recv_audio=1 if audio else 0)
               for i in range(n)]
    await asyncio.gather(*(c.wait_connected() for c in clients))
    return clients


def subscribe_all(room: Room, clients: list[Client], participant: str = "pub") -> None:
    for c in clients:
        for source_id, source in room.sources.items():
            if source.participant_id == participant:
                room.subscribe(c.participant_id, source_id)


def video_sink(room: Room, client: Client) -> Sink:
    return next(s for s in room.peer(client.participant_id).sinks.values() if s.kind == "video")


async def close_all(*clients: Client) -> None:
    await asyncio.gather(*(c.close() for c in clients))


async def test_passthrough_fanout_to_ten_subscribers(room: Room,
                                                     decode_errors: DecodeErrorCounter) -> None:
    pub = await join(room, "pub", video=True, audio=True)
    await pub.wait_connected()
    subs = await join_subscribers(room, 10)
    subscribe_all(room, subs)
    assert await wait_for(lambda: all(c.video().frames > 0 for c in subs), 8.0), \
        [c.video().frames for c in subs]
    before_v = [c.video().frames for c in subs]
    before_a = [c.audio().frames for c in subs]
    window = 3.0
    await asyncio.sleep(window)
    gained_v = [c.video().frames - b for c, b in zip(subs, before_v)]
    gained_a = [c.audio().frames - b for c, b in zip(subs, before_a)]
    # 15 fps and 50 audio frames/s sent: every subscriber decodes most of them
    assert min(gained_v) >= 0.5 * 15 * window, gained_v
    assert min(gained_a) >= 0.5 * 50 * window, gained_a
    assert all(c.video().sizes == {(320, 240)} for c in subs)
    assert decode_errors.count == 0
    # each outgoing stream has its own SSRC
    ssrcs = [s.params.ssrc for c in subs for s in room.peer(c.participant_id).sinks.values()]
    assert len(set(ssrcs)) == len(ssrcs) == 20
    # ten subscribers asking for a keyframe at once cost the publisher few PLIs
    video = room.sources["pub:0"]
    assert video.stats.keyframe_requests >= 10
    assert video.stats.keyframe_requests_sent <= 4
    assert video.stats.sink_errors == 0
    # the server never decodes: its receivers' decoder threads are stopped
    server_receivers = [t.receiver for t in room.peer("pub").pc.getTransceivers()]
    assert not any(decoder_running(r) for r in server_receivers)
    await close_all(pub, *subs)


async def test_late_joiner_gets_a_keyframe_within_one_second(
        room: Room, decode_errors: DecodeErrorCounter) -> None:
    pub = await join(room, "pub", video=True)
    await pub.wait_connected()
    (early,) = await join_subscribers(room, 1, "early", audio=False)
    subscribe_all(room, [early])
    assert await wait_for(lambda: early.video().frames > 5, 8.0)
    await asyncio.sleep(1.5)  # the publisher's last keyframe is now well in the past
    (late,) = await join_subscribers(room, 1, "late", audio=False)
    started = time.monotonic()
    subscribe_all(room, [late])
    assert await wait_for(lambda: late.video().first_at is not None, 3.0)
    first_at = late.video().first_at
    assert first_at is not None
    delay = first_at - started
    assert delay < 1.0, f"first decoded frame after {delay:.2f}s"
    assert decode_errors.count == 0
    await close_all(pub, early, late)


async def test_loss_on_one_hop_is_recovered_by_nack_and_pli(room: Room) -> None:
    pub = await join(room, "pub", video=True)
    await pub.wait_connected()
    lossy, clean = await join_subscribers(room, 2, audio=False)
    subscribe_all(room, [lossy, clean])
    assert await wait_for(lambda: lossy.video().frames > 3 and clean.video().frames > 3, 8.0)
    sink = video_sink(room, lossy)
    # lose every 5th packet on the server -> lossy hop only
    lossy.drop_incoming_rtp(lambda n: n % 5 == 0)
    before_lossy, before_clean = lossy.video().frames, clean.video().frames
    await asyncio.sleep(3.0)
    lossy.restore_incoming_rtp()
    gained_lossy = lossy.video().frames - before_lossy
    gained_clean = clean.video().frames - before_clean
    assert sink.stats.nacks > 0 and sink.stats.retransmits > 0, sink.stats
    assert gained_clean >= 20
    assert gained_lossy >= 0.6 * gained_clean, (gained_lossy, gained_clean)
    assert video_sink(room, clean).stats.retransmits == 0
    # a PLI from the subscriber becomes a keyframe from the publisher
    source = room.sources["pub:0"]
    sent_before, keyframes_before = source.stats.keyframe_requests_sent, sink.stats.keyframes
    await asyncio.sleep(0.6)  # past the rate limit window
    receiver = next(t.receiver for t in lossy.pc.getTransceivers() if t.kind == "video")
    await receiver._send_rtcp_pli(sink.params.ssrc)
    assert await wait_for(lambda: sink.stats.keyframe_requests >= 1, 2.0)
    assert await wait_for(lambda: source.stats.keyframe_requests_sent > sent_before, 1.0)
    assert await wait_for(lambda: sink.stats.keyframes > keyframes_before, 2.0)
    # frames keep coming on the repaired hop
    frames = lossy.video().frames
    assert await wait_for(lambda: lossy.video().frames > frames + 5, 3.0)
    # loss on the publisher's hop: the server NACKs, the publisher's RTX is unwrapped and
    # forwarded, both subscribers keep decoding
    pub.drop_outgoing_rtp(lambda n: n % 6 == 0)
    before = [lossy.video().frames, clean.video().frames]
    await asyncio.sleep(2.0)
    pub.restore_outgoing_rtp()
    assert source.stats.retransmitted > 0
    gained = [lossy.video().frames - before[0], clean.video().frames - before[1]]
    assert min(gained) >= 12, gained
    await close_all(pub, lossy, clean)


async def test_publisher_leaves_and_slots_switch_at_keyframes(
        room: Room, events: list[MediaEvent], decode_errors: DecodeErrorCounter,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    pub_a = await join(room, "a", video=True)
    pub_b = await join(room, "b", video=True)
    await asyncio.gather(pub_a.wait_connected(), pub_b.wait_connected())
    subs = await join_subscribers(room, 3, audio=False)
    subscribe_all(room, subs, participant="a")
    assert await wait_for(lambda: all(c.video().frames > 3 for c in subs), 8.0)
    # switch sub0's slot to b: continues without renegotiation, at b's keyframe
    switched = video_sink(room, subs[0])
    room.subscribe(subs[0].participant_id, "b:0", mid=switched.params.mid)
    assert await wait_for(lambda: switched.stats.switches == 1, 3.0)
    assert switched.source is room.sources["b:0"]
    # publisher a leaves mid-stream
    await room.remove_peer("a")
    await pub_a.close()
    assert SourceRemoved("source_removed", "a:0", "a") in events
    idle = {(e.participant_id, e.source_id, e.reason) for e in events if isinstance(e, SlotIdle)}
    assert idle == {("sub1", "a:0", "source_ended"), ("sub2", "a:0", "source_ended")}
    assert video_sink(room, subs[1]).source is None
    counts = [c.video().frames for c in subs]
    await asyncio.sleep(1.0)
    assert subs[0].video().frames > counts[0] + 5  # on b, unaffected
    stalled = subs[1].video().frames
    # sub1's idle slot takes b: its stream continues (same SSRC, next sequence numbers)
    room.subscribe(subs[1].participant_id, "b:0")
    assert await wait_for(lambda: subs[1].video().frames > stalled + 5, 3.0)
    assert decode_errors.count == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await close_all(pub_b, *subs)


async def test_stalled_subscriber_is_bounded_and_harms_no_one(room: Room,
                                                              events: list[MediaEvent]) -> None:
    pub = await join(room, "pub", video=True, audio=True)
    await pub.wait_connected()
    stalled, ok1, ok2 = await join_subscribers(room, 3)
    subscribe_all(room, [stalled, ok1, ok2])
    assert await wait_for(lambda: all(c.video().frames > 3 for c in (stalled, ok1, ok2)), 8.0)
    connection = stalled.dtls().transport._connection
    sockets = [p.transport for p in connection._protocols]
    for s in sockets:
        s.pause_reading()
    before = [c.video().frames for c in (ok1, ok2)]
    await asyncio.sleep(2.5)
    gained = [c.video().frames - b for c, b in zip((ok1, ok2), before)]
    assert min(gained) >= 15, gained
    peer = room.peer(stalled.participant_id)
    sink = video_sink(room, stalled)
    assert sink.history_len == room.config.history_size  # fixed ring, whatever happens
    assert peer._writer is not None
    assert peer._writer.buffered() <= room.config.send_buffer_limit_bytes
    for s in sockets:
        s.resume_reading()
    frames = stalled.video().frames
    assert await wait_for(lambda: stalled.video().frames > frames + 5, 4.0)
    # a subscriber that vanishes: its server peer is closed and removed, others go on
    await stalled.close()
    assert await wait_for(lambda: "sub0" not in room.peers, 5.0)
    assert PeerClosed("peer_closed", "sub0", "failed") in events
    assert len(room.sources["pub:0"].sinks) == 2
    frames = ok1.video().frames
    assert await wait_for(lambda: ok1.video().frames > frames + 5, 3.0)
    await close_all(pub, ok1, ok2)


async def test_join_leave_cycles_leak_no_task_or_peer(room: Room) -> None:
    pub = await join(room, "pub", video=True)
    await pub.wait_connected()

    async def cycle(i: int, server_side: bool) -> weakref.ref[Peer]:
        (sub,) = await join_subscribers(room, 1, f"c{i}-", audio=False)
        ref = weakref.ref(room.peer(sub.participant_id))
        subscribe_all(room, [sub])
        assert await wait_for(lambda: sub.video().frames > 0, 5.0)
        if server_side:
            await room.remove_peer(sub.participant_id)
            await sub.close()
        else:
            await sub.close()
            assert await wait_for(lambda: sub.participant_id not in room.peers, 5.0)
        return ref

    await cycle(0, True)  # warm up lazily created machinery
    await asyncio.sleep(0.5)
    baseline = len(asyncio.all_tasks())
    def own_threads() -> int:
        # Executor workers (asyncio's default executor, getaddrinfo) are pooled for the
        # process and started lazily by whatever ran before: they are not ours to count.
        return sum(1 for t in threading.enumerate()
                   if not t.name.startswith(("ThreadPoolExecutor", "asyncio_")))

    threads = own_threads()
    refs = [await cycle(i, server_side=i % 2 == 0) for i in range(1, 13)]
    assert await wait_for(lambda: len(asyncio.all_tasks()) <= baseline, 5.0), \
        sorted(repr(t.get_coro()) for t in asyncio.all_tasks())[:20]
    assert list(room.peers) == ["pub"]
    assert room.sources["pub:0"].sinks == ()
    assert await wait_for(lambda: own_threads() <= threads, 5.0), [t.name for t in threading.enumerate()]
    gc.collect()
    assert [r for r in refs if r() is not None] == []
    await pub.close()


async def test_h264_passthrough_when_both_sides_negotiate_it(
        room: Room, decode_errors: DecodeErrorCounter) -> None:
    pub = await join(room, "pub", video=True, video_codec="H264")
    await pub.wait_connected()
    assert room.sources["pub:0"].codec.name == "H264"
    both = await join(room, "both", recv_video=1)  # offers VP8 and H264
    vp8_only = Client(room, "vp8only")
    vp8_only.pc.addTransceiver("video", direction="recvonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    vp8_only.pc.getTransceivers()[0].setCodecPreferences(
        [c for c in caps if c.name in ("VP8", "rtx")])
    await vp8_only.pc.setLocalDescription(await vp8_only.pc.createOffer())
    await room.create_peer("vp8only").accept_offer(vp8_only.pc.localDescription.sdp)
    await both.wait_connected()
    room.subscribe("both", "pub:0")
    with pytest.raises(MediaError) as err:
        room.subscribe("vp8only", "pub:0")
    assert err.value.code == "no_free_slot"
    assert await wait_for(lambda: both.video().frames >= 10, 6.0), both.video().frames
    assert both.video().sizes == {(320, 240)}
    assert decode_errors.count == 0
    await close_all(pub, both, vp8_only)


async def test_trickled_candidates_and_renegotiated_slot(
        room: Room, decode_errors: DecodeErrorCounter) -> None:
    pub_a = await join(room, "a", video=True)
    pub_b = await join(room, "b", video=True)
    sub = await join(room, "sub", recv_video=1, trickle=True)
    await asyncio.gather(pub_a.wait_connected(), pub_b.wait_connected(), sub.wait_connected())
    room.subscribe("sub", "a:0")
    assert await wait_for(lambda: sub.counters["0"].frames > 3, 6.0)
    # a second slot without a new connection: the client offers again
    await sub.renegotiate(recv_video=1)
    assert [s.mid for s in room.slots("sub")] == ["0", "1"]
    await sub.wait_connected()
    room.subscribe("sub", "b:0")  # lands on the free slot
    assert room.peer("sub").sinks["1"].source is room.sources["b:0"]
    before = sub.counters["0"].frames
    assert await wait_for(lambda: sub.counters["1"].frames > 5, 6.0)
    assert sub.counters["0"].frames > before
    assert decode_errors.count == 0
    await close_all(pub_a, pub_b, sub)


async def test_audio_skips_aiortc_receive_path_but_publisher_gets_receiver_reports(
        room: Room) -> None:
    """A publisher's audio is consumed by the tap (aiortc's receiver never parses it), yet the
    receiver's reports about it still reach the publisher; video still takes aiortc's path
    (NACK, REMB)."""
    from aiortc.rtp import RtcpRrPacket

    pub = await join(room, "pub", video=True, audio=True)
    try:
        await pub.wait_connected()
        server = room.peer("pub").pc
        parsed = {"audio": 0, "video": 0}
        for t in server.getTransceivers():
            receiver, kind = t.receiver, t.kind
            original = receiver._handle_rtp_packet

            async def counting(packet: object, arrival_time_ms: int, kind: str = kind,
                               original: object = original) -> None:
                parsed[kind] += 1
                await original(packet, arrival_time_ms=arrival_time_ms)  # type: ignore[operator]

            receiver._handle_rtp_packet = counting  # type: ignore[method-assign]
        audio_sender = next(t.sender for t in pub.pc.getTransceivers() if t.kind == "audio")
        reported: list[int] = []
        original_rtcp = audio_sender._handle_rtcp_packet

        async def on_rtcp(packet: object) -> None:
            if isinstance(packet, RtcpRrPacket):
                reported.extend(r.packets_lost for r in packet.reports
                                if r.ssrc == audio_sender._ssrc)
            await original_rtcp(packet)

        audio_sender._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]
        audio = next(s for s in room.sources.values() if s.kind == "audio")
        before = audio.stats.packets
        assert await wait_for(lambda: len(reported) >= 2 and audio.stats.packets > before + 50, 8)
        assert parsed["audio"] == 0 and parsed["video"] > 0
        assert reported[-1] == 0  # nothing lost on 127.0.0.1, and the count is the real one
    finally:
        await pub.close()
