"""Quick spike: cost of diemcau's packet forwarder per subscriber, in one process.

One aiortc publisher (synthetic VP8 camera) -> media.Room -> N light subscribers (real aiortc
peers whose DTLS layer only counts packets: no jitter buffer, no decoding, see LAB.md's
harness warning). Measures the forwarding path itself (time spent in the server's RTP tap,
which includes every sink's rewrite + SRTP + sendto), per-subscriber fps/loss from sequence
numbers and marker bits, and hop latency (server fan-out -> subscriber socket) from the
abs-send-time the sink writes. Not the contract benchmark (bench/media_fanout.py comes with
the signalling layer); a tool to size the design.

    python bench/media_spike.py --subscribers 20 --seconds 10 --width 640 --height 360

Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media import MediaConfig, Room
from media.inbound import InboundDemux
from media.rtp import find_extension, parse_rtp
from media.source import ntp_now
from tests.media.harness import Client


class LightSubscriber:
    """A real peer connection whose incoming RTP is only counted."""

    def __init__(self, room: Room, name: str) -> None:
        self.room = room
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.packets = 0
        self.frames = 0
        self.max_seq: int | None = None
        self.expected = 0
        self.latencies: list[float] = []
        self.counting = False

    async def connect(self) -> None:
        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await self.room.create_peer(self.name).accept_offer(
            self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        dtls = self.pc.getTransceivers()[0].receiver.transport

        async def count(data: bytes, arrival_time_ms: int) -> None:
            view = parse_rtp(data)
            if view is None or not self.counting or view.payload_type != 97:
                return
            self.packets += 1
            self.frames += view.marker
            if self.max_seq is None:
                self.max_seq = view.sequence_number
                self.expected = 1
            else:
                delta = (view.sequence_number - self.max_seq) & 0xFFFF
                if 0 < delta < 0x8000:
                    self.expected += delta
                    self.max_seq = view.sequence_number
            ast = find_extension(data, view, 3)
            if ast is not None and len(self.latencies) < 20000:
                now = (ntp_now() >> 14) & 0xFFFFFF
                diff = (now - int.from_bytes(ast)) & 0xFFFFFF
                self.latencies.append(diff / 262144 * 1000)  # 6.18 fixed point -> ms

        dtls._handle_rtp_data = count  # type: ignore[method-assign]

    async def close(self) -> None:
        await self.pc.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # loopback only
    tap_time = [0.0, 0]
    original_tap = InboundDemux._tap

    def timed_tap(self: InboundDemux, data: bytes, after_routing: bool) -> bool:
        t0 = time.perf_counter()
        try:
            return original_tap(self, data, after_routing)
        finally:
            tap_time[0] += time.perf_counter() - t0
            tap_time[1] += 1

    InboundDemux._tap = timed_tap  # type: ignore[method-assign]
    room = Room(MediaConfig())
    pub = Client(room, "pub")
    await pub.connect(video=True, fps=args.fps, size=(args.width, args.height))
    await pub.wait_connected()
    subs = [LightSubscriber(room, f"s{i}") for i in range(args.subscribers)]
    for s in subs:
        await s.connect()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(
            all(k.ready for k in room.peer(s.name).sinks.values()) for s in subs):
        await asyncio.sleep(0.05)
    for s in subs:
        room.subscribe(s.name, "pub:0")
    await asyncio.sleep(2.0)  # keyframe, warm-up
    for s in subs:
        s.counting = True
    tap_time[:] = [0.0, 0]
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(args.seconds)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    for s in subs:
        s.counting = False
    fps = [s.frames / wall for s in subs]
    lost = sum(max(0, s.expected - s.packets) for s in subs)
    expected = sum(s.expected for s in subs) or 1
    latencies = sorted(x for s in subs for x in s.latencies)
    n = max(1, args.subscribers)
    result = {
        "subscribers": args.subscribers,
        "seconds": round(wall, 2),
        "resolution": f"{args.width}x{args.height}@{args.fps}",
        "fps_min": round(min(fps), 2) if fps else 0.0,
        "fps_median": round(statistics.median(fps), 2) if fps else 0.0,
        "loss_pct": round(100 * lost / expected, 3),
        "publisher_packets_per_s": round(tap_time[1] / wall, 1),
        "forward_cpu_pct_total": round(100 * tap_time[0] / wall, 3),
        "forward_cpu_pct_per_subscriber": round(100 * tap_time[0] / wall / n, 4),
        "forward_us_per_packet_per_subscriber": round(
            1e6 * tap_time[0] / max(1, tap_time[1]) / n, 2),
        "hop_latency_ms_median": round(statistics.median(latencies), 3) if latencies else None,
        "hop_latency_ms_p99": round(latencies[int(len(latencies) * 0.99)], 3)
        if latencies else None,
        "process_cpu_pct": round(100 * cpu / wall, 1),
    }
    for s in subs:
        await s.close()
    await pub.close()
    await room.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
