"""A source fed by something other than a local peer (as a worker process or an upstream
node of the cascade will feed one): packets from a plain encoder loop, keyframe requests
answered by the feeder, decoded by a real aiortc subscriber."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc.codecs.vpx import Vp8Encoder

from media import CodecSpec, Room, Source, make_packet
from tests.media.harness import Client, DecodeErrorCounter, wait_for


class RemoteFeeder:
    """Stands in for the far end of a link: encodes frames and pushes their packets."""

    def __init__(self) -> None:
        self.encoder = Vp8Encoder()
        self.want_keyframe = False
        self.keyframe_requests = 0
        self.seq = 1000

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self.want_keyframe = True

    async def run(self, source: Source, stop: asyncio.Event) -> None:
        img = np.zeros((240, 320, 3), np.uint8)
        n = 0
        while not stop.is_set():
            img[:, :, 0] = (n * 7) % 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = n * 6000
            frame.time_base = fractions.Fraction(1, 90000)
            force, self.want_keyframe = self.want_keyframe, False
            payloads, ts = self.encoder.encode(frame, force_keyframe=force)
            for i, payload in enumerate(payloads):
                source.push(make_packet(source.codec, self.seq & 0xFFFF, ts,
                                        i == len(payloads) - 1, payload))
                self.seq += 1
            n += 1
            await asyncio.sleep(1 / 15)


async def test_remote_source_reaches_a_subscriber(room: Room,
                                                  decode_errors: DecodeErrorCounter) -> None:
    feeder = RemoteFeeder()
    source = Source("district-7:cam", "district-7", CodecSpec("video", "VP8", 90000),
                    request_keyframe=feeder.request_keyframe)
    room.add_source(source)
    stop = asyncio.Event()
    task = asyncio.create_task(feeder.run(source, stop))
    try:
        sub = Client(room, "commune-1")
        await sub.connect(recv_video=1)
        await sub.wait_connected()
        room.subscribe("commune-1", "district-7:cam")
        assert await wait_for(lambda: sub.video().frames >= 10, 6.0), sub.video().frames
        assert feeder.keyframe_requests >= 1  # the late subscriber's keyframe came from it
        assert decode_errors.count == 0
        room.remove_source("district-7:cam")
        assert room.peer("commune-1").sinks["0"].source is None
        await sub.close()
    finally:
        stop.set()
        await task
