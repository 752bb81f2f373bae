"""The packet link (media/link.py): a real publisher in one room, its sources forwarded over a
Unix datagram socket to a second room (as a worker process would host), decoded there by a
real subscriber; keyframe requests travel back; the publisher leaving ends the remote
sources. Nothing is faked but the process boundary (the socket is the same either way)."""

from __future__ import annotations

import asyncio
import socket

from media import MediaConfig, MediaEvent, Room, SlotIdle, Source
from media.link import LinkReceiver, LinkSender
from tests.media.harness import Client, DecodeErrorCounter, wait_for


async def test_sources_cross_a_link_to_another_room(room: Room,
                                                    decode_errors: DecodeErrorCounter) -> None:
    loop = asyncio.get_running_loop()
    events: list[MediaEvent] = []
    far = Room(MediaConfig(), on_event=events.append)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    _, sender = await loop.create_datagram_endpoint(lambda: LinkSender(a), sock=a)
    _, receiver = await loop.create_datagram_endpoint(
        lambda: LinkReceiver(b, on_source=far.add_source,
                             on_end=lambda s: far.remove_source(s.source_id)), sock=b)
    pub = Client(room, "district-1")
    sub = Client(far, "commune-9")
    try:
        await pub.connect(video=True, audio=True)
        await pub.wait_connected()
        local = room.peer("district-1").sources
        for source in local.values():
            sender.forward(source)
        assert await wait_for(lambda: len(far.sources) == 2, 5)
        remote = far.sources
        assert set(remote) == {s.source_id for s in local.values()}
        assert {s.codec for s in remote.values()} == {s.codec for s in local.values()}
        await sub.connect(recv_video=1, recv_audio=1)
        await sub.wait_connected()
        for source_id in remote:
            far.subscribe("commune-9", source_id)
        assert await wait_for(lambda: sub.video().frames >= 10 and sub.audio().frames >= 10, 15)
        assert decode_errors.count == 0
        video: Source = next(s for s in local.values() if s.kind == "video")
        assert video.stats.keyframe_requests >= 1  # the far subscriber's start reached us
        assert sender.dropped == 0 and receiver.malformed == 0
        receiver.datagram_received(b"Z?", None)  # garbage is counted, not fatal
        assert receiver.malformed == 1
        await room.remove_peer("district-1")  # publisher leaves: remote sources end
        assert await wait_for(lambda: not far.sources, 5)
        assert any(isinstance(e, SlotIdle) and e.participant_id == "commune-9" for e in events)
    finally:
        await sub.close()
        await pub.close()
        sender.close()
        receiver.close()
        await far.close()


async def test_a_worker_process_serves_subscribers_over_the_link(
        room: Room, decode_errors: DecodeErrorCounter) -> None:
    """The publisher stays here; the subscriber's peer lives in a separate process fed by the
    link: the process split media.workers is designed around (not wired into the server)."""
    from aiortc import RTCSessionDescription

    from media.pool import WorkerProcess

    loop = asyncio.get_running_loop()
    worker = WorkerProcess(host_addresses=("127.0.0.1",))
    _, sender = await loop.create_datagram_endpoint(lambda: LinkSender(worker.link),
                                                    sock=worker.link)
    await worker.start()
    pub = Client(room, "district-1")
    sub = Client(room, "commune-9")  # its peer is created in the worker, not in ``room``
    try:
        await pub.connect(video=True)
        await pub.wait_connected()
        (source,) = room.peer("district-1").sources.values()
        sender.forward(source, tag="m1")
        for _ in range(100):  # the worker may still be starting (importing aiortc)
            if await worker.call("sources", room="m1") == [source.source_id]:
                break
            await asyncio.sleep(0.05)
        assert await worker.call("sources", room="m1") == [source.source_id]
        sub.pc.addTransceiver("video", direction="recvonly")
        await sub.pc.setLocalDescription(await sub.pc.createOffer())
        answer = await worker.call("offer", room="m1", participant_id="commune-9",
                                   sdp=sub.pc.localDescription.sdp)
        await sub.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        sub._start_readers()
        await worker.call("subscribe", room="m1", participant_id="commune-9",
                          source_id=source.source_id)
        assert await wait_for(lambda: sub.video().frames >= 10, 20)
        assert decode_errors.count == 0
        assert source.stats.keyframe_requests >= 1  # asked across the process boundary
        stats = await worker.call("stats")
        assert stats["m1"]["sinks"]["commune-9:0"]["packets"] > 0
    finally:
        await sub.close()
        await pub.close()
        sender.close()
        await worker.close()
    assert worker.process.returncode == 0


async def test_an_unwanted_audio_source_sends_only_level_summaries() -> None:
    """On demand, an audio source nobody on the far side pulls crosses as one ``L`` summary
    per ``LEVEL_INTERVAL_S`` (the far side's speaker detection still hears it); demanded, its
    packets cross and the summaries stop. A truncated summary is malformed, not fatal."""
    from media import CodecSpec, make_packet
    from media.link import LEVEL_INTERVAL_S
    from media.speakers import ActiveSpeakers

    loop = asyncio.get_running_loop()
    opus = CodecSpec("audio", "OPUS", 48000, 2)
    mic = Source("commune-3:1", "commune-3", opus)
    remote: list[Source] = []
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    _, sender = await loop.create_datagram_endpoint(lambda: LinkSender(a), sock=a)
    _, receiver = await loop.create_datagram_endpoint(
        lambda: LinkReceiver(b, on_source=remote.append, on_end=lambda s: s.close()), sock=b)
    speakers = ActiveSpeakers(size=1)
    seq = 0

    async def talk(seconds: float, level: int) -> None:
        nonlocal seq
        for _ in range(int(seconds / 0.02)):
            mic.push(make_packet(opus, seq & 0xFFFF, seq * 960, False, b"\x01" * 40,
                                 audio_level=level))
            seq += 1
            await asyncio.sleep(0.02)

    try:
        sender.forward(mic, on_demand=True)
        assert await wait_for(lambda: len(remote) == 1, 2)
        far = remote[0]
        speakers.track(far)  # a level observer: does not pull the packets
        await talk(0.6, 20)
        assert far.fed_packets == 0
        assert sender.level_messages >= 0.6 / LEVEL_INTERVAL_S / 2
        assert sender.level_messages < 30  # summaries, not one message per packet
        assert -30 < speakers.level(far.source_id) < -19  # rising from silence to -20 dBov
        assert speakers.update() and speakers.active == [far.source_id]

        class Counter:
            packets = 0

            def on_packet(self, source: object, packet: object, ntp_time: int) -> None:
                Counter.packets += 1

            def on_source_ended(self, source: object) -> None:
                pass

        counter = Counter()
        far.add_sink(counter)  # demand: packets now
        await asyncio.sleep(0.1)
        summaries = sender.level_messages
        await talk(0.4, 40)
        assert Counter.packets >= 10 and far.fed_packets == Counter.packets
        assert sender.level_messages == summaries
        assert -40 < speakers.level(far.source_id) < -20  # heard from the packets themselves
        far.remove_sink(counter)
        await asyncio.sleep(0.1)
        fed = far.fed_packets
        await talk(0.3, 30)
        assert far.fed_packets <= fed + 2 and sender.level_messages > summaries
        receiver.datagram_received(b"L\x00\x01\x05", None)
        assert receiver.malformed == 1
    finally:
        speakers.close()
        sender.close()
        receiver.close()
        mic.close()
