"""An outgoing stream to one subscriber (luồng ra): a fixed SSRC, sequence numbers,
timestamps and VP8 picture ids of its own, whichever source it carries.

Rewrite rules (per packet, no decode): ``out = in + offset`` for the sequence number
(mod 2^16), the timestamp (mod 2^32) and the VP8 picture id (mod 2^15). Offsets are chosen
when a source starts (at a keyframe) so that the outgoing stream continues where it left
off: next sequence number, timestamp advanced by the wall-clock time elapsed, next picture
id. Video never starts or switches source on a delta frame; a switch keeps forwarding the
old source until the new one's keyframe arrives. Audio starts at any packet.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from media.codecs import vp8_set_picture_id
from media.errors import MediaError
from media.history import PacketHistory
from media.packet import MediaPacket
from media.rtp import ONE_BYTE_PROFILE, RTP_HEADER, seq_newer
from media.source import Source
from media.stream import StreamOutput, StreamParams

logger = logging.getLogger(__name__)

MAX_NACKED_PER_FEEDBACK = 128


@dataclass(slots=True)
class SinkStats:
    """Counters of one outgoing stream."""

    packets: int = 0
    bytes: int = 0
    keyframes: int = 0
    "Keyframe starts sent (video)."
    dropped_congestion: int = 0
    dropped_waiting_keyframe: int = 0
    nacks: int = 0
    "NACK feedback messages received."
    nacked_packets: int = 0
    retransmits: int = 0
    retransmit_misses: int = 0
    "NACKed packets no longer (or never) in the history."
    keyframe_requests: int = 0
    "PLI/FIR received from the subscriber."
    keyframe_waits: int = 0
    "Times the stream (re)started waiting for a keyframe."
    switches: int = 0
    remb_bps: int | None = None
    fraction_lost: float | None = None
    "Loss the subscriber reported for this stream in its last receiver report (0..1)."
    rtt_ms: float | None = None
    "Round trip time computed from the subscriber's last receiver report."
    reports: int = 0
    "Receiver reports received for this stream."
    errors: list[str] = field(default_factory=list)


SinkListener = Callable[["Sink", str, Source | None], None]
"Told ``(sink, event, source)`` with event ``source_ended`` or ``failed``."


class Sink:
    """One outgoing stream. ``attach`` a source (switches at the next keyframe when another
    is attached), ``detach`` to pause. All methods run on the event loop, synchronously."""

    def __init__(self, params: StreamParams, output: StreamOutput, *, history_size: int = 1024,
                 retransmits_per_s: float = 300.0, keyframe_retry_s: float = 0.6,
                 listener: SinkListener | None = None, name: str = "") -> None:
        self.params = params
        self.name = name or f"sink-{params.ssrc}"
        self.stats = SinkStats()
        self._output = output
        self._listener = listener
        self._history = PacketHistory(history_size, retransmits_per_s) if (
            params.kind == "video") else None
        self._rtx_map = dict(params.rtx)
        self._rtx_seq = random.getrandbits(16) % 32768
        self._keyframe_retry = keyframe_retry_s
        self._ready = False
        self._closed = False
        self._current: Source | None = None
        self._pending: Source | None = None
        self._pt = 0
        self._pending_pt = 0
        self._clock_rate = 90000
        self._started = False
        self._have_sent = False
        self._seq_off = 0
        self._ts_off = 0
        self._pid_off = 0
        self._start_seq = 0
        self._last_seq = 0
        self._last_ts = 0
        self._last_pid: int | None = None
        self._last_send = 0.0
        self._keyframe_asked_at = -1e9
        self._mid_elem = b""
        if params.mid is not None and params.mid_ext_id and 0 < len(params.mid) <= 16:
            mid = params.mid.encode("ascii", "replace")
            self._mid_elem = bytes([(params.mid_ext_id << 4) | (len(mid) - 1)]) + mid
        self._ast_id = params.abs_send_time_ext_id or 0
        self._level_id = params.audio_level_ext_id or 0

    # --- state --------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.params.kind

    @property
    def source(self) -> Source | None:
        """The source being sent (or about to be, at its first keyframe)."""
        return self._pending or self._current

    @property
    def sending(self) -> bool:
        return self._started and self._current is not None

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def history_len(self) -> int:
        return len(self._history) if self._history is not None else 0

    def set_ready(self) -> None:
        """The output can carry packets now (e.g. the subscriber's sender started)."""
        if self._closed or self._ready:
            return
        self._ready = True
        if self.source is not None:
            self._ask_keyframe(self.source, force=True)

    # --- attach / detach ----------------------------------------------------------------

    def attach(self, source: Source) -> None:
        """Carry ``source`` from its next keyframe on (audio: from its next packet)."""
        if self._closed:
            raise MediaError("peer_closed", "the outgoing stream is closed")
        if source.closed:
            raise MediaError("unknown_source", f"source {source.source_id} has ended")
        if source.kind != self.kind:
            raise MediaError("kind_mismatch",
                             f"cannot send {source.kind} source on a {self.kind} stream")
        pt = self.params.payload_type_for(source.codec)
        if pt is None:
            raise MediaError("codec_mismatch",
                             f"{source.codec} was not negotiated on stream {self.params.mid}")
        if source is self._pending:
            return
        if self._pending is not None:  # a newer choice replaces a pending switch
            self._pending.remove_sink(self)
            self._pending = None
        if source is self._current:
            return
        if self._current is None:
            self._current = source
            self._pt = pt
            self._started = False
        else:
            self._pending = source
            self._pending_pt = pt
        source.add_sink(self)
        self.stats.keyframe_waits += 1
        if self._ready:
            self._ask_keyframe(source, force=True)

    def detach(self) -> None:
        """Stop sending (the stream stays negotiated and keeps its numbering)."""
        for source in (self._pending, self._current):
            if source is not None:
                source.remove_sink(self)
        self._pending = self._current = None
        self._started = False

    def close(self) -> None:
        """Detach and drop the history. Safe to call twice."""
        if self._closed:
            return
        self.detach()
        self._closed = True
        if self._history is not None:
            self._history.clear()

    # --- PacketSink ---------------------------------------------------------------------

    def on_packet(self, source: Source, packet: MediaPacket, ntp_time: int) -> None:
        if not self._ready:
            return
        if source is self._pending:
            if not packet.keyframe:
                self._ask_keyframe(source)
                return
            if self._current is not None:
                self._current.remove_sink(self)
            self._current, self._pending, self._pt = source, None, self._pending_pt
            self.stats.switches += 1
            self._restart(packet)
        elif source is not self._current:
            return
        elif not self._started:
            if not packet.keyframe:
                self.stats.dropped_waiting_keyframe += 1
                self._ask_keyframe(source)
                return
            self._restart(packet)
        else:
            delta = (packet.sequence_number - self._start_seq) & 0xFFFF
            if delta >= 0x8000:  # older than the packet this stream started at
                return
            if delta > 8192:
                self._start_seq = (packet.sequence_number - 4096) & 0xFFFF
        self._send(packet, ntp_time)

    def on_source_ended(self, source: Source) -> None:
        if source is self._pending:
            self._pending = None
            return
        if source is self._current:
            self._current = None
            self._started = False
            if self._pending is not None:  # the switch target takes over at its keyframe
                self._current, self._pending, self._pt = self._pending, None, self._pending_pt
            else:
                self._notify("source_ended", source)

    # --- sending ------------------------------------------------------------------------

    def _restart(self, packet: MediaPacket) -> None:
        assert self._current is not None
        self._clock_rate = self._current.codec.clock_rate
        if not self._have_sent:
            self._seq_off = (random.getrandbits(16) % 32768 - packet.sequence_number) & 0xFFFF
            self._ts_off = (random.getrandbits(32) - packet.timestamp) & 0xFFFFFFFF
            self._pid_off = 0
        else:
            ticks = max(1, int((time.monotonic() - self._last_send) * self._clock_rate))
            self._seq_off = (self._last_seq + 1 - packet.sequence_number) & 0xFFFF
            self._ts_off = (self._last_ts + ticks - packet.timestamp) & 0xFFFFFFFF
            vp8 = packet.vp8
            if vp8 is not None and vp8.picture_id is not None and self._last_pid is not None:
                self._pid_off = (self._last_pid + 1 - vp8.picture_id) & 0x7FFF
            else:
                self._pid_off = 0
        self._start_seq = packet.sequence_number
        self._started = True

    def _send(self, packet: MediaPacket, ntp_time: int) -> None:
        seq = (packet.sequence_number + self._seq_off) & 0xFFFF
        ts = (packet.timestamp + self._ts_off) & 0xFFFFFFFF
        payload = packet.payload
        vp8 = packet.vp8
        if vp8 is not None and vp8.picture_id is not None:
            pid = (vp8.picture_id + self._pid_off) & 0x7FFF
            if self._pid_off:
                payload = vp8_set_picture_id(payload, vp8, pid)
        else:
            pid = None
        ext = self._mid_elem
        if self._ast_id:
            ext += bytes([(self._ast_id << 4) | 2]) + ((ntp_time >> 14) & 0xFFFFFF).to_bytes(3)
        if self._level_id and packet.audio_level is not None:
            ext += bytes([self._level_id << 4, packet.audio_level & 0xFF])
        if ext:
            ext += b"\x00" * (-len(ext) % 4)
            header = RTP_HEADER.pack(0x90, (0x80 if packet.marker else 0) | self._pt, seq, ts,
                                     self.params.ssrc)
            header += (ONE_BYTE_PROFILE << 16 | len(ext) // 4).to_bytes(4) + ext
        else:
            header = RTP_HEADER.pack(0x80, (0x80 if packet.marker else 0) | self._pt, seq, ts,
                                     self.params.ssrc)
        try:
            sent = self._output.write_rtp(header + payload)
        except (ConnectionError, OSError) as exc:
            self._fail(exc)
            return
        stats = self.stats
        if not sent:
            stats.dropped_congestion += 1
        else:
            stats.packets += 1
            stats.bytes += len(payload)
            if packet.keyframe and self._history is not None:
                stats.keyframes += 1
        if self._history is not None:
            self._history.put(seq, header, payload)
        if not self._have_sent or seq_newer(seq, self._last_seq):
            self._last_seq, self._last_ts, self._have_sent = seq, ts, True
            if pid is not None:
                self._last_pid = pid
        self._last_send = time.monotonic()
        self._output.report(ntp_time, ts, stats.packets, stats.bytes)

    # --- feedback from the subscriber ---------------------------------------------------

    def on_nack(self, lost: list[int]) -> None:
        """Retransmit what the history still holds (RTX if negotiated), within budget; a
        packet gone from the history costs a keyframe instead."""
        stats = self.stats
        stats.nacks += 1
        if self._history is None or self._closed:
            return
        missed = False
        for seq in lost[:MAX_NACKED_PER_FEEDBACK]:
            stats.nacked_packets += 1
            entry = self._history.get(seq & 0xFFFF)
            if entry is None:
                stats.retransmit_misses += 1
                missed = True
                continue
            if not self._history.may_retransmit(seq & 0xFFFF):
                continue
            header, payload = entry
            rtx_pt = self._rtx_map.get(header[1] & 0x7F)
            if rtx_pt is not None and self.params.rtx_ssrc is not None:
                data = (RTP_HEADER.pack(header[0], (header[1] & 0x80) | rtx_pt, self._rtx_seq,
                                        int.from_bytes(header[4:8]), self.params.rtx_ssrc)
                        + header[12:] + header[2:4] + payload)
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            else:
                data = header + payload
            try:
                if self._output.write_rtp(data):
                    stats.retransmits += 1
            except (ConnectionError, OSError) as exc:
                self._fail(exc)
                return
        if missed and self._current is not None:
            self._current.request_keyframe()

    def on_keyframe_request(self) -> None:
        """The subscriber sent PLI or FIR."""
        self.stats.keyframe_requests += 1
        source = self.source
        if source is not None:
            source.request_keyframe()

    def on_remb(self, bitrate: int) -> None:
        self.stats.remb_bps = bitrate

    # --- helpers ------------------------------------------------------------------------

    def _ask_keyframe(self, source: Source, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._keyframe_asked_at >= self._keyframe_retry:
            self._keyframe_asked_at = now
            source.request_keyframe()

    def _fail(self, exc: BaseException) -> None:
        if self._closed:
            return
        logger.info("%s: output failed (%s); closing it", self.name, exc)
        self.stats.errors.append(str(exc)[:200])
        source = self.source
        self.close()
        self._notify("failed", source)

    def _notify(self, event: str, source: Source | None) -> None:
        if self._listener is not None:
            try:
                self._listener(self, event, source)
            except Exception:
                logger.exception("%s: listener failed on %s", self.name, event)

    def __repr__(self) -> str:
        return f"Sink({self.name!r}, {self.kind}, source={self.source!r})"
