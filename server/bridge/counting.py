"""Counting what arrives without decoding it (``--receive-only`` and the load benchmark).

:class:`RtpCounter` replaces the agent's ``RTCDtlsTransport._handle_rtp_data`` (plain RTP
after SRTP unprotect, before aiortc parses it — the same hook the server's forwarder uses,
``media/aiortc_hooks.py``) and counts per incoming stream: packets, bytes, frames (distinct
RTP timestamps), VP8/H264 keyframes, losses (sequence-number gaps) and retransmissions. In
counting mode the packet goes no further (no jitter buffer, no decoder: ~10 µs a packet); in
``passthrough`` mode aiortc's receiver gets it too, so receiver reports and NACKs still flow.
Streams are told apart by SSRC, mapped to their m-line (mid) from the server's answer.
"""

from __future__ import annotations

import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media.codecs import h264_keyframe_start, vp8_info
from media.rtp import URI_MID, find_extension, parse_rtp

Probe = Callable[[int, float], None]
"""Gets (CRC-32 of a video packet's payload, arrival time.time()) — for latency measurements:
the payload is the one thing a forwarder never rewrites."""


@dataclass
class MSection:
    """What the answer says about one m-line."""

    mid: str
    kind: str
    codecs: dict[int, str] = field(default_factory=dict)
    "payload type → upper-case codec name (RTX included)."
    ssrcs: set[int] = field(default_factory=set)
    extensions: dict[str, int] = field(default_factory=dict)
    "extension URI → id."


def parse_sections(sdp: str) -> list[MSection]:
    """The m-lines of an SDP with their mid, codecs, SSRCs and header-extension ids."""
    sections: list[MSection] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            sections.append(MSection(mid=str(len(sections)), kind=line[2:].split(" ", 1)[0]))
        elif not sections:
            continue
        elif line.startswith("a=mid:"):
            sections[-1].mid = line[6:]
        elif line.startswith("a=rtpmap:"):
            pt, _, rest = line[9:].partition(" ")
            if pt.isdigit():
                sections[-1].codecs[int(pt)] = rest.split("/", 1)[0].upper()
        elif line.startswith("a=ssrc:"):
            ssrc = line[7:].split(" ", 1)[0]
            if ssrc.isdigit():
                sections[-1].ssrcs.add(int(ssrc))
        elif line.startswith("a=extmap:"):
            xid, _, uri = line[9:].partition(" ")
            xid = xid.split("/", 1)[0]
            if xid.isdigit():
                sections[-1].extensions[uri.split(" ", 1)[0]] = int(xid)
    return sections


@dataclass
class StreamCount:
    """Counters of one incoming stream (one SSRC)."""

    ssrc: int
    mid: str
    kind: str
    packets: int = 0
    bytes: int = 0
    frames: int = 0
    keyframes: int = 0
    retransmissions: int = 0
    first_seq: int = -1
    "Extended sequence number of the first packet."
    highest_seq: int = -1
    "Highest extended sequence number seen."
    last_timestamp: int | None = None
    first_at: float | None = None
    last_at: float | None = None
    codec: str = ""

    @property
    def expected(self) -> int:
        return self.highest_seq - self.first_seq + 1 if self.first_seq >= 0 else 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    def as_dict(self) -> dict[str, Any]:
        return {"ssrc": self.ssrc, "mid": self.mid, "kind": self.kind, "codec": self.codec,
                "packets": self.packets, "bytes": self.bytes, "frames": self.frames,
                "keyframes": self.keyframes, "lost": self.lost, "expected": self.expected,
                "retransmissions": self.retransmissions}


class RtpCounter:
    """Counts the incoming RTP of one (bundled) peer connection."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.streams: dict[int, StreamCount] = {}
        self.malformed = 0
        self.probe: Probe | None = None
        self.drain: Callable[[], None] | None = None
        "Set by :func:`fast_count`: reads (and counts) what waits in the socket now."
        self._ssrc_mid: dict[int, str] = {}
        self._kinds: dict[str, str] = {}
        self._codecs: dict[int, str] = {}
        self._mid_ext: set[int] = set()
        self._installed: list[Any] = []

    def learn(self, answer_sdp: str) -> None:
        """Map SSRCs, payload types and extension ids from the server's answer (again after
        each renegotiation)."""
        for section in parse_sections(answer_sdp):
            self._kinds[section.mid] = section.kind
            self._codecs.update(section.codecs)
            for ssrc in section.ssrcs:
                self._ssrc_mid[ssrc] = section.mid
            mid_id = section.extensions.get(URI_MID)
            if mid_id:
                self._mid_ext.add(mid_id)

    def install(self, dtls: Any, *, passthrough: bool) -> None:
        """Hook ``dtls`` (an ``RTCDtlsTransport``): count every plain RTP packet; with
        ``passthrough`` hand it on to aiortc's receiver as well. Idempotent per transport."""
        if any(d is dtls for d in self._installed):
            return
        original = dtls._handle_rtp_data
        count = self.count

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            count(data)
            if passthrough:
                await original(data, arrival_time_ms)

        dtls._handle_rtp_data = handle_rtp_data
        self._installed.append(dtls)

    def uninstall(self) -> None:
        for dtls in self._installed:
            dtls.__dict__.pop("_handle_rtp_data", None)
        self._installed.clear()

    def _stream(self, data: bytes, view: Any) -> StreamCount:
        mid = self._ssrc_mid.get(view.ssrc)
        if mid is None:
            for mid_id in self._mid_ext:
                value = find_extension(data, view, mid_id)
                if value:
                    mid = value.decode("ascii", "replace")
                    self._ssrc_mid[view.ssrc] = mid
                    break
        mid = mid if mid is not None else "?"
        stream = StreamCount(view.ssrc, mid, self._kinds.get(mid, "unknown"))
        self.streams[view.ssrc] = stream
        return stream

    def count(self, data: bytes) -> None:
        """Account one plain RTP packet (synchronous, no allocation beyond the view)."""
        view = parse_rtp(data)
        if view is None:
            self.malformed += 1
            return
        codec = self._codecs.get(view.payload_type, "")
        stream = self.streams.get(view.ssrc)
        if stream is None:
            stream = self._stream(data, view)
        if codec == "RTX":
            stream.retransmissions += 1
            return
        now = self.clock()
        stream.codec = codec
        stream.packets += 1
        stream.bytes += len(data)
        stream.last_at = now
        seq = view.sequence_number
        if stream.first_seq < 0:
            stream.first_seq = stream.highest_seq = seq
            stream.first_at = now
        else:
            delta = (seq - stream.highest_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                stream.highest_seq += delta
        payload = data[view.payload_start:view.payload_end]
        if stream.kind == "audio":
            stream.frames += 1
            return
        last = stream.last_timestamp
        if last is None or 0 < ((view.timestamp - last) & 0xFFFFFFFF) < 0x80000000:
            stream.last_timestamp = view.timestamp
            stream.frames += 1
        if codec == "VP8":
            if vp8_info(payload).keyframe_start:
                stream.keyframes += 1
        elif codec == "H264" and h264_keyframe_start(payload):
            stream.keyframes += 1
        if self.probe is not None:
            self.probe(zlib.crc32(payload), now)

    def by_mid(self) -> dict[str, dict[str, Any]]:
        """Counters summed per m-line (a slot keeps one SSRC, so usually one stream each)."""
        out: dict[str, dict[str, Any]] = {}
        for stream in self.streams.values():
            entry = out.setdefault(stream.mid, {"kind": stream.kind, "packets": 0, "bytes": 0,
                                                "frames": 0, "keyframes": 0, "lost": 0,
                                                "expected": 0, "retransmissions": 0})
            for key in ("packets", "bytes", "frames", "keyframes", "lost", "expected",
                        "retransmissions"):
                entry[key] += getattr(stream, key)
        return out

    def totals(self, kind: str | None = None) -> dict[str, int]:
        """Counters summed over every stream (of ``kind`` when given)."""
        keys = ("packets", "bytes", "frames", "keyframes", "lost", "expected", "retransmissions")
        sums = dict.fromkeys(keys, 0)
        for stream in self.streams.values():
            if kind is None or stream.kind == kind:
                for key in keys:
                    sums[key] += getattr(stream, key)
        return sums


def rates(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    """Per-second rates and loss between two :meth:`RtpCounter.totals` snapshots."""
    seconds = max(seconds, 1e-6)
    packets = after["packets"] - before["packets"]
    expected = after["expected"] - before["expected"]
    lost = max(0, expected - packets)
    return {"fps": round((after["frames"] - before["frames"]) / seconds, 2),
            "packets_per_s": round(packets / seconds, 1),
            "kbps": round(8 * (after["bytes"] - before["bytes"]) / seconds / 1000, 1),
            "keyframes": after["keyframes"] - before["keyframes"],
            "loss_pct": round(100 * lost / expected, 3) if expected > 0 else 0.0}


__all__ = ["MSection", "Probe", "RtpCounter", "StreamCount", "parse_sections", "rates"]


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS is the same
_TIMESPEC = struct.Struct("@qq")
RECEIVE_BUFFER = 2 << 20
"SO_RCVBUF of a counting socket: a busy receiving process must not turn its lateness into loss."


def fast_count(pc: Any, counter: RtpCounter, *, kernel_time: bool = True) -> bool:
    """Count a connected peer's incoming RTP synchronously in aioice's datagram callback: SRTP
    unprotect with the DTLS transport's receive session, then ``counter`` (which drops it). No
    per-packet queue, task hop or STUN parse (about half the CPU of the ``_handle_rtp_data``
    hook, which stays installed for packets that come another way). RTCP, DTLS and STUN keep
    aiortc's path. aiortc 1.16 / aioice 0.13 internals: ``RTCIceTransport._connection``,
    ``Connection.data_received``, ``Connection._nominated[1].protocol.datagram_received``,
    ``RTCDtlsTransport._rx_srtp``; False (nothing changed) when one of them is missing.

    ``kernel_time`` (Linux): the nominated socket is read with ``recvmsg`` and
    ``SO_TIMESTAMPNS``, and a packet's arrival
    time (``counter.clock()`` while it is counted) is when the kernel queued it, not when this
    process got round to it: arrival gaps then measure the sender, not the receiving process's
    own scheduling (on one machine shared with the server, that process is often late).
    ``counter.drain()`` reads what is queued at once (before a measurement window closes)."""
    from aiortc.rtp import is_rtcp

    transceivers = pc.getTransceivers()
    if not transceivers:
        return False
    dtls = transceivers[0].receiver.transport
    connection: Any = getattr(dtls.transport, "_connection", None)
    rx = getattr(dtls, "_rx_srtp", None)
    original = getattr(connection, "data_received", None)
    if rx is None or original is None:
        return False
    count = counter.count

    def rtp(data: bytes) -> bool:
        if data and 127 < data[0] < 192 and not is_rtcp(data):
            try:
                plain = rx.unprotect(data)
            except Exception:  # noqa: BLE001 - a replayed or damaged packet: not counted
                return True
            count(plain)
            return True
        return False

    def data_received(data: bytes, component: int) -> None:
        if not rtp(data):
            original(data, component)

    connection.data_received = data_received
    pair = getattr(connection, "_nominated", {}).get(1)
    protocol: Any = getattr(pair, "protocol", None)
    slow = getattr(protocol, "datagram_received", None)
    if slow is not None:  # before aioice tries to parse every RTP packet as STUN
        def datagram_received(data: bytes, addr: Any) -> None:
            if not rtp(data):
                slow(data, addr)

        protocol.datagram_received = datagram_received
        if kernel_time:
            _read_with_kernel_time(protocol, counter)
    return True


def _read_with_kernel_time(protocol: Any, counter: RtpCounter) -> None:
    """Replace the asyncio datagram transport's reader of ``protocol`` (see :func:`fast_count`)."""
    import asyncio

    transport: Any = getattr(protocol, "transport", None)
    sock = getattr(transport, "_sock", None)
    if sock is None or transport.is_closing():
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError:
        return
    arrival: list[float | None] = [None]
    wall = counter.clock

    def clock() -> float:
        at = arrival[0]
        return wall() if at is None else at

    def read_one() -> bool:
        try:
            data, ancillary, _flags, addr = sock.recvmsg(65536, 64)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            protocol.error_received(exc)
            return False
        at = None
        for level, kind, value in ancillary:
            if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(value) >= 16:
                sec, nsec = _TIMESPEC.unpack_from(value)
                at = sec + nsec * 1e-9
        arrival[0] = at
        try:
            protocol.datagram_received(data, addr)
        finally:
            arrival[0] = None
        return True

    def read_ready() -> None:  # one datagram per wake-up, as asyncio's own reader
        read_one()

    def drain() -> None:
        for _ in range(100_000):
            if not read_one():
                break

    loop: Any = asyncio.get_running_loop()
    fd = sock.fileno()
    # the private forms: the public ones refuse a descriptor that belongs to a transport
    loop._remove_reader(fd)
    loop._add_reader(fd, read_ready)
    counter.clock = clock
    counter.drain = drain
