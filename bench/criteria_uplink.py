"""The light points' uplink without aiortc's per-packet sender (``bench/criteria.py`` only).

aiortc sends each RTP packet through a coroutine per track (pace, ``recv()``, packetize, build an
``RtpPacket``, serialize, ``await`` the transport): measured with py-spy in a harness process
of 10 points, that was ~45 % of its busy time, i.e. the harness, not the server, ate the CPU
the 40-point run needs. Here ONE pacing loop per harness process sends every point's
thumbnail and microphone: the RTP header is packed by hand (the negotiated payload type, the
sender's own SSRC, the MID extension), then ``media.aiortc_hooks.RawWriter`` protects it with
the point's SRTP session and writes it to the nominated ICE pair, and the sender's report
counters are fed as aiortc would (:func:`media.aiortc_hooks.sender_report_feeder`), so the
server sees the same streams, sender reports included. aiortc keeps everything else: ICE,
DTLS, RTCP; a PLI from the server still sets the sender's "force keyframe" flag, which
:class:`criteria_media.ReplayVideo` honours. Not sent: retransmissions (no history kept; on
127.0.0.1 nothing is lost) and the abs-send-time extension (no REMB for a thumbnail).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from dataclasses import dataclass
from typing import Any

from aiortc.codecs.vpx import Vp8Encoder
from criteria_media import ReplayAudio, ReplayVideo

from media.aiortc_hooks import RawWriter, sender_report_feeder
from media.rtp import ONE_BYTE_PROFILE, URI_MID
from media.source import ntp_now

_HEADER = struct.Struct("!BBHII")
TICK_S = 0.004
"The pacing loop wakes at most this often (each stream keeps its own schedule and phase)."
CATCH_UP_S = 0.5
"A stream more than this late (the process was stalled) skips ahead instead of bursting."


@dataclass(eq=False)
class _Stream:
    track: ReplayAudio | ReplayVideo
    writer: RawWriter
    report: Any
    payload_type: int
    ssrc: int
    extension: bytes
    period: float
    due: float
    seq: int
    timestamp: int
    packets: int = 0
    octets: int = 0
    picture_id: int = 0

    def send(self) -> None:
        track = self.track
        if isinstance(track, ReplayVideo):
            payloads = Vp8Encoder._packetize(track.take(), self.picture_id)
            self.picture_id = (self.picture_id + 1) & 0x7FFF
        else:
            payloads = [track.take()]
        last = len(payloads) - 1
        first = 0x90 if self.extension else 0x80
        for i, payload in enumerate(payloads):
            header = _HEADER.pack(first, (0x80 if i == last else 0) | self.payload_type,
                                  self.seq, self.timestamp, self.ssrc)
            if self.writer.write_rtp(header + self.extension + payload):
                self.packets += 1
                self.octets += len(payload)
            self.seq = (self.seq + 1) & 0xFFFF
        self.report(ntp_now(), self.timestamp, self.packets, self.octets)
        self.timestamp = (self.timestamp + track.rtp_step) & 0xFFFFFFFF


class RawUplink:
    """Sends the raw-mode replay tracks of every adopted peer connection (see module doc).
    Owns one pacing task and one waiting task per watched link; :meth:`close` ends them."""

    def __init__(self) -> None:
        self._streams: list[_Stream] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._pacer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.failed = 0

    def watch(self, link: Any) -> None:
        """Adopt ``link``'s raw tracks once it is connected (a bridge ``MediaLink``)."""
        task = asyncio.create_task(self._adopt_when_connected(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _adopt_when_connected(self, link: Any) -> None:
        await link.connected.wait()
        self.adopt(link.pc)

    def adopt(self, pc: Any) -> int:
        """Start sending for each transceiver of ``pc`` whose track is in raw mode."""
        loop = asyncio.get_running_loop()
        added = 0
        for transceiver in pc.getTransceivers():
            sender = transceiver.sender
            track = sender.track
            if not isinstance(track, ReplayAudio | ReplayVideo) or not track.raw:
                continue
            codecs = [c for c in transceiver._codecs if c.name.lower() != "rtx"]
            if not codecs or sender.transport is None:
                continue
            mid_id = next((e.id for e in transceiver._headerExtensions if e.uri == URI_MID), None)
            extension = b""
            if mid_id and transceiver.mid:
                mid = transceiver.mid.encode("ascii")
                element = bytes([(mid_id << 4) | (len(mid) - 1)]) + mid
                element += b"\x00" * (-len(element) % 4)
                extension = (ONE_BYTE_PROFILE << 16 | len(element) // 4).to_bytes(4, "big") + element
            period = track._period
            self._streams.append(_Stream(
                track, RawWriter(sender.transport, 1 << 20), sender_report_feeder(sender),
                codecs[0].payloadType, sender._ssrc, extension, period,
                loop.time() + random.random() * period, random.getrandbits(16),
                random.getrandbits(32)))
            added += 1
        if added and self._pacer is None:
            self._pacer = asyncio.create_task(self._pace())
        return added

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        while self._streams:
            now = loop.time()
            for stream in list(self._streams):
                if now - stream.due > CATCH_UP_S:
                    stream.due = now
                while stream.due <= now:
                    stream.due += stream.period
                    try:
                        stream.send()
                    except ConnectionError:  # the point left: its stream ends here
                        self.failed += 1
                        self._streams.remove(stream)
                        break
            if self._streams:
                wait = min(s.due for s in self._streams) - loop.time()
                await asyncio.sleep(max(wait, TICK_S))
        self._pacer = None

    @property
    def streams(self) -> int:
        return len(self._streams)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._pacer] if self._pacer else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._streams.clear()
