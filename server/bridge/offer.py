"""The agent's WebRTC side: one bundled aiortc peer connection, the ``media.offer`` it makes
(sendonly camera renditions + mic, recvonly ``main`` + ``audio`` slots, per the media
contract: the client always offers) and what it receives, counted by :class:`RtpCounter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

from media.aiortc_hooks import hook_receiver
from media.rtp import parse_rtp
from server.bridge.counting import RtpCounter, StreamCount, fast_count

log = logging.getLogger("diemcau.bridge")

REPORT_INTERVAL_S = 1.0
"""A counting agent's receiver reports (its aiortc receivers never see the RTP, so they send
none): the server's link quality needs them — without reports a subscriber never earns HD."""


@dataclass(frozen=True)
class OfferedTrack:
    """One m-line of our offer as the contract names it (``tracks`` of ``media.offer``)."""

    mid: str
    kind: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"mid": self.mid, "kind": self.kind, "role": self.role}


SendTap = Callable[[int, float], None]
"""Gets (CRC-32 of an outgoing video packet's payload, time.time() when handed to SRTP)."""


class MediaLink:
    """One peer connection to the server's SFU. ``count_only``: incoming RTP is counted and
    dropped (no jitter buffer, no decoder); otherwise aiortc's receiver also gets it (its
    decoder stopped), so receiver reports and NACKs flow as from a real hall PC."""

    def __init__(self, tracks: dict[str, MediaStreamTrack], *, main_slots: int, audio_slots: int,
                 count_only: bool, counter: RtpCounter | None = None) -> None:
        self.tracks = tracks
        self.main_slots = main_slots
        self.audio_slots = audio_slots
        self.count_only = count_only
        self.counter = counter or RtpCounter()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.offered: list[OfferedTrack] = []
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self.send_tap: SendTap | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._reported: dict[int, tuple[int, int]] = {}
        "Per SSRC: (expected, packets) at the last receiver report."

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            state = self.pc.connectionState
            if state == "connected":
                if self.count_only and not self.connected.is_set():
                    fast_count(self.pc, self.counter)
                self.connected.set()
            elif state in ("failed", "closed"):
                self.failed.set()

    async def make_offer(self) -> tuple[str, list[OfferedTrack]]:
        """Add our transceivers (camera renditions, mic, then the slots) and create the offer;
        the SDP and the ``tracks`` list of ``media.offer``."""
        roles: list[tuple[str, str, MediaStreamTrack | None]] = []
        for role in ("camera-hd", "camera", "camera-low", "camera-thumb"):
            if role in self.tracks:
                roles.append(("video", role, self.tracks[role]))
        if "mic" in self.tracks:
            roles.append(("audio", "mic", self.tracks["mic"]))
        roles += [("video", "main", None)] * self.main_slots
        roles += [("audio", "audio", None)] * self.audio_slots
        transceivers = []
        for kind, role, track in roles:
            if track is not None:
                t = self.pc.addTransceiver(track, direction="sendonly")
                if kind == "video":  # the SFU forwards VP8 best (and what the contract measures)
                    caps = RTCRtpSender.getCapabilities("video").codecs
                    t.setCodecPreferences([c for c in caps if c.name in ("VP8", "rtx")])
            else:
                t = self.pc.addTransceiver(kind, direction="recvonly")
                hook_receiver(t.receiver, lambda _params: None)  # its decoder thread is stopped
            transceivers.append((t, kind, role))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offered = [OfferedTrack(str(t.mid), kind, role) for t, kind, role in transceivers]
        return self.pc.localDescription.sdp, self.offered

    async def apply_answer(self, sdp: str) -> None:
        """Apply the server's answer and hook the (single, bundled) DTLS transport."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self.counter.learn(sdp)
        transceivers = self.pc.getTransceivers()
        if not transceivers:
            return
        dtls = transceivers[0].receiver.transport
        self.counter.install(dtls, passthrough=not self.count_only)
        if self.send_tap is not None:
            self._install_send_tap(dtls)
        if self.count_only and self._reporter is None:
            self._reporter = asyncio.create_task(self._report_loop(dtls), name="bridge-rr")

    def receiver_report(self, sender_ssrc: int) -> RtcpRrPacket | None:
        """An RTCP RR (RFC 3550 6.4.2) for every counted stream: loss since the last report
        and in total, highest sequence number; no jitter or round-trip fields."""
        reports = []
        for stream in list(self.counter.streams.values())[:31]:
            if stream.packets == 0 or stream.kind not in ("audio", "video"):
                continue
            reports.append(self._report_block(stream))
        return RtcpRrPacket(ssrc=sender_ssrc, reports=reports) if reports else None

    def _report_block(self, stream: StreamCount) -> RtcpReceiverInfo:
        expected, packets = stream.expected, stream.packets
        before = self._reported.get(stream.ssrc, (0, 0))
        self._reported[stream.ssrc] = (expected, packets)
        interval = expected - before[0]
        lost = interval - (packets - before[1])
        fraction = (lost << 8) // interval if interval > 0 and lost > 0 else 0
        return RtcpReceiverInfo(ssrc=stream.ssrc, fraction_lost=min(fraction, 255),
                                packets_lost=min(stream.lost, 0x7FFFFF),
                                highest_sequence=stream.highest_seq & 0xFFFFFFFF, jitter=0,
                                lsr=0, dlsr=0)

    async def _report_loop(self, dtls: Any) -> None:
        sender_ssrc = zlib.crc32(str(id(self)).encode()) or 1
        while True:
            await asyncio.sleep(REPORT_INTERVAL_S)
            packet = self.receiver_report(sender_ssrc)
            if packet is None:
                continue
            try:
                await dtls._send_rtp(bytes(packet))
            except ConnectionError:
                continue  # not connected (yet, or any more): the next round tries again

    def _install_send_tap(self, dtls: Any) -> None:
        """Record when each outgoing video packet leaves (benchmarks: one-way delay through
        the server, matched by payload at the subscriber)."""
        original = dtls._send_rtp
        tap = self.send_tap
        video_pts = {c.payloadType for t in self.pc.getTransceivers() if t.kind == "video"
                     for c in (t._codecs or [])}

        async def send_rtp(data: bytes) -> None:
            view = parse_rtp(data)
            if tap is not None and view is not None and view.payload_type in video_pts:
                tap(zlib.crc32(data[view.payload_start:view.payload_end]), time.time())
            await original(data)

        dtls._send_rtp = send_rtp

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout)
        return self.connected.is_set()

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    async def close(self) -> None:
        """Close the peer connection (our tracks are stopped by their owner). Safe twice."""
        self.counter.uninstall()
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pc.close()
