"""A packet link between two media rooms over a datagram socket: the building block of media
worker processes (media.pool, media.worker) and later of the cascade between nodes.

The sending side (:class:`LinkSender`) attaches one packet sink per forwarded source and
writes each packet **once per link** (not once per subscriber); the receiving side
(:class:`LinkReceiver`) owns a *remote* :class:`media.source.Source` per announced track,
pushes the packets into it and sends its keyframe requests back, where they become
``Source.request_keyframe`` on the real source (rate-limited there). A source forwarded
*on demand* sends its packets only while the receiver's remote source has a sink (the
receiver says so with ``D``): a worker announces every video it hosts to the server process
but only the ones somebody watches cross the link. :class:`LinkEndpoint` is both sides on
one socket (a worker link carries packets both ways).

Wire format (version 2), one datagram per message, network byte order:

* ``A`` announce: ``"A" u16 index`` + UTF-8 JSON ``{source_id, participant_id, tag,
  on_demand, codec: {kind, name, clock_rate, packetization_mode, profile}}``
* ``P`` packet: ``"P" u16 index u16 seq u32 timestamp u8 flags u8 level`` + payload
  (flags: 1 marker, 2 audio level present); keyframe/VP8 facts are re-parsed on arrival.
* ``E`` end of source: ``"E" u16 index``
* ``K`` keyframe request (receiver → sender): ``"K" u16 index``
* ``D`` demand (receiver → sender): ``"D" u16 index u8 wanted``
* ``L`` audio levels (sender → receiver): ``"L"`` + per source ``u16 index u8 level u8 count``:
  for an on-demand audio source that is *not* demanded, the mean RFC 6464 level of the
  ``count`` packets seen in the last ``LEVEL_INTERVAL_S``, so the far end's speaker detection
  keeps listening to every microphone while only the forwarded ones cross as packets.

Packets are dropped when the socket buffer is full (a slow far end loses packets, never
memory); ``A``/``E``/``D`` are kept in a short backlog and retried instead (bounded).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from media.codecs import CodecSpec
from media.packet import MediaPacket, make_packet
from media.source import Source

logger = logging.getLogger(__name__)

_PACKET = struct.Struct("!cHHIBB")
_INDEX = struct.Struct("!cH")
_DEMAND = struct.Struct("!cHB")
_LEVEL = struct.Struct("!HBB")
LEVEL_INTERVAL_S = 0.05
"How often the levels of audio sources not forwarded as packets are sent (one datagram)."
MAX_DATAGRAM = 65000
CONTROL_LINE_LIMIT = 64 * 1024 * 1024
"""Longest JSON line on a worker's or recorder's control channel (asyncio's default, 64 KiB,
is less than one ``stats`` event of a worker holding ~70 peers)."""
MAX_BACKLOG = 4096
RETRY_S = 0.005


class _Wire:
    """Writes datagrams on a connected non-blocking socket; control messages that meet a
    full buffer wait in a bounded backlog, retried every few milliseconds in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.transport: asyncio.DatagramTransport | None = None
        self._backlog: collections.deque[bytes] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def write(self, data: bytes) -> bool:
        """Send one datagram; False when dropped (closed, too big, or the buffer is full)."""
        transport = self.transport
        if transport is None or transport.is_closing() or len(data) > MAX_DATAGRAM:
            return False
        try:
            self.sock.send(data)
        except (BlockingIOError, InterruptedError, ConnectionError, OSError):
            return False
        return True

    def write_reliably(self, data: bytes) -> None:
        if self._backlog or not self.write(data):
            if len(self._backlog) < MAX_BACKLOG:
                self._backlog.append(data)
            else:
                logger.warning("media link: control backlog full, message dropped")
            self._arm()

    def _arm(self) -> None:
        if self._timer is None and self._backlog and self.transport is not None \
                and not self.transport.is_closing():
            self._timer = asyncio.get_running_loop().call_later(RETRY_S, self._flush)

    def _flush(self) -> None:
        self._timer = None
        while self._backlog and self.write(self._backlog[0]):
            self._backlog.popleft()
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._backlog.clear()


class _Forward:
    """The packet sink the sender attaches to one source (while not demanded: silent, or for
    audio, adding up levels for the next ``L`` message)."""

    __slots__ = ("_link", "active", "index", "level_count", "level_sum")

    def __init__(self, link: LinkSender, index: int, active: bool) -> None:
        self._link = link
        self.index = index
        self.active = active
        self.level_sum = 0
        self.level_count = 0

    def on_packet(self, source: Source, packet: MediaPacket, ntp_time: int) -> None:
        level = packet.audio_level
        if not self.active:
            if level is not None:
                if not self.level_count:
                    self._link.level_pending(self)
                self.level_sum += level & 0x7F
                self.level_count += 1
            return
        flags = (1 if packet.marker else 0) | (2 if level is not None else 0)
        self._link.send(_PACKET.pack(b"P", self.index, packet.sequence_number,
                                     packet.timestamp, flags, level or 0) + packet.payload)

    def on_source_ended(self, source: Source) -> None:
        self._link.ended(self.index)


class LinkSender(asyncio.DatagramProtocol):
    """Forwards sources to the far end of a connected datagram socket (e.g. one end of
    ``socket.socketpair(AF_UNIX, SOCK_DGRAM)``; give the same socket to
    ``loop.create_datagram_endpoint(lambda: LinkSender(sock), sock=sock)``)."""

    def __init__(self, sock: socket.socket, wire: _Wire | None = None) -> None:
        self._wire = wire or _Wire(sock)
        self._by_index: dict[int, tuple[Source, _Forward]] = {}
        self._next = 0
        self._levels: list[_Forward] = []
        self._level_timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.dropped = 0
        self.level_messages = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._wire.transport = transport  # type: ignore[assignment]  # a datagram transport

    @property
    def forwarded(self) -> dict[int, Source]:
        """Sources being forwarded, by link index."""
        return {i: e[0] for i, e in self._by_index.items()}

    def send(self, data: bytes) -> None:
        if self._wire.write(data):
            self.sent += 1
        else:
            self.dropped += 1

    def level_pending(self, forward: _Forward) -> None:
        """``forward`` has levels to report: send them with the others at the next tick."""
        self._levels.append(forward)
        if self._level_timer is None:
            self._level_timer = asyncio.get_running_loop().call_later(
                LEVEL_INTERVAL_S, self._send_levels)

    def _send_levels(self) -> None:
        self._level_timer = None
        pending, self._levels = self._levels, []
        parts = [b"L"]
        for forward in pending:
            count = forward.level_count
            if count and not forward.active and forward.index in self._by_index:
                parts.append(_LEVEL.pack(forward.index, forward.level_sum // count,
                                         min(count, 255)))
            forward.level_sum = forward.level_count = 0
        if len(parts) > 1:
            self.level_messages += 1
            self.send(b"".join(parts))

    def forward(self, source: Source, *, tag: str = "", on_demand: bool = False) -> int:
        """Announce ``source`` and forward its packets (``on_demand``: only while the far
        end asks for them); its link index. ``tag`` is passed to the far end as is."""
        index = self._next
        self._next = (self._next + 1) & 0xFFFF
        codec = source.codec
        self._wire.write_reliably(_INDEX.pack(b"A", index) + json.dumps({
            "source_id": source.source_id, "participant_id": source.participant_id,
            "tag": tag, "on_demand": on_demand,
            "codec": {"kind": codec.kind, "name": codec.name, "clock_rate": codec.clock_rate,
                      "packetization_mode": codec.packetization_mode,
                      "profile": codec.profile}}).encode("utf-8"))
        sink = _Forward(self, index, not on_demand)
        self._by_index[index] = (source, sink)
        source.add_sink(sink)
        return index

    def stop(self, index: int) -> None:
        entry = self._by_index.pop(index, None)
        if entry is not None:
            entry[0].remove_sink(entry[1])
            self._wire.write_reliably(_INDEX.pack(b"E", index))

    def ended(self, index: int) -> None:
        if self._by_index.pop(index, None) is not None:
            self._wire.write_reliably(_INDEX.pack(b"E", index))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        kind = data[:1]
        if kind == b"K" and len(data) == _INDEX.size:
            entry = self._by_index.get(_INDEX.unpack(data)[1])
            if entry is not None:
                entry[0].request_keyframe()
        elif kind == b"D" and len(data) == _DEMAND.size:
            _, index, wanted = _DEMAND.unpack(data)
            entry = self._by_index.get(index)
            if entry is not None:
                entry[1].active = bool(wanted)
                entry[1].level_sum = entry[1].level_count = 0
                if wanted:  # whoever asked needs a decodable start
                    entry[0].request_keyframe()

    def close(self) -> None:
        for index in list(self._by_index):
            self.stop(index)
        if self._level_timer is not None:
            self._level_timer.cancel()
            self._level_timer = None
        self._levels.clear()
        self._wire.close()
        if self._wire.transport is not None:
            self._wire.transport.close()


class LinkReceiver(asyncio.DatagramProtocol):
    """Turns a link's datagrams into remote sources (``on_source`` / ``on_end`` tell the
    owner, e.g. ``Room.add_source`` / ``Room.remove_source``). ``mirror_stats``: the remote
    sources' ``stats`` are left to the owner (copied from the far end)."""

    def __init__(self, sock: socket.socket, *, on_source: Callable[[Source], None],
                 on_end: Callable[[Source], None], min_keyframe_interval: float = 0.5,
                 mirror_stats: bool = False, wire: _Wire | None = None) -> None:
        self._on_source = on_source
        self._on_end = on_end
        self._interval = min_keyframe_interval
        self._mirror = mirror_stats
        self._wire = wire or _Wire(sock)
        self.sources: dict[int, Source] = {}
        self.tags: dict[str, str] = {}
        "Tag of each remote source, by source id."
        self.malformed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._wire.transport = transport  # type: ignore[assignment]  # a datagram transport

    def _ask_keyframe(self, index: int) -> Callable[[], None]:
        def ask() -> None:
            self._wire.write(_INDEX.pack(b"K", index))
        return ask

    def _demand(self, index: int) -> Callable[[bool], None]:
        def demand(wanted: bool) -> None:
            self._wire.write_reliably(_DEMAND.pack(b"D", index, 1 if wanted else 0))
        return demand

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self._receive(data)
        except (struct.error, ValueError, KeyError, TypeError) as exc:
            self.malformed += 1
            logger.warning("media link: malformed datagram (%d bytes): %s", len(data), exc)

    def _receive(self, data: bytes) -> None:
        kind = data[:1]
        if kind == b"P":
            _, index, seq, ts, flags, level = _PACKET.unpack_from(data)
            source = self.sources.get(index)
            if source is not None:
                source.push(make_packet(source.codec, seq, ts, bool(flags & 1),
                                        data[_PACKET.size:], level if flags & 2 else None))
        elif kind == b"L":
            if (len(data) - 1) % _LEVEL.size:
                raise ValueError("truncated levels")
            for index, level, count in _LEVEL.iter_unpack(memoryview(data)[1:]):
                source = self.sources.get(index)
                if source is not None:
                    source.feed_level(level, count)
        elif kind == b"A":
            index = _INDEX.unpack_from(data)[1]
            info = json.loads(data[_INDEX.size:].decode("utf-8"))
            c = info["codec"]
            codec = CodecSpec(str(c["kind"]), str(c["name"]), int(c["clock_rate"]),
                              str(c["packetization_mode"]), str(c["profile"]))
            source = Source(str(info["source_id"]), str(info["participant_id"]), codec,
                            request_keyframe=self._ask_keyframe(index),
                            min_keyframe_interval=self._interval, mirror_stats=self._mirror)
            if info.get("on_demand"):
                source.set_demand_listener(self._demand(index))
            old = self.sources.pop(index, None)
            if old is not None:  # the index was reused: the old source ended unannounced
                self._end(old)
            self.sources[index] = source
            self.tags[source.source_id] = str(info.get("tag", ""))
            self._on_source(source)
        elif kind == b"E":
            source = self.sources.pop(_INDEX.unpack_from(data)[1], None)
            if source is not None:
                self._end(source)
        else:
            raise ValueError(f"unknown message {kind!r}")

    def _end(self, source: Source) -> None:
        self._on_end(source)
        self.tags.pop(source.source_id, None)

    def close(self) -> None:
        sources = list(self.sources.values())
        self.sources.clear()
        for source in sources:
            self._end(source)
        self._wire.close()
        if self._wire.transport is not None:
            self._wire.transport.close()


class LinkEndpoint(asyncio.DatagramProtocol):
    """Both directions of one link on one socket: ``K``/``D`` go to the sender (they are
    about what this side forwards), everything else to the receiver."""

    def __init__(self, sock: socket.socket, *, on_source: Callable[[Source], None],
                 on_end: Callable[[Source], None], min_keyframe_interval: float = 0.5,
                 mirror_stats: bool = False) -> None:
        wire = _Wire(sock)
        self.sender = LinkSender(sock, wire)
        self.receiver = LinkReceiver(sock, on_source=on_source, on_end=on_end,
                                     min_keyframe_interval=min_keyframe_interval,
                                     mirror_stats=mirror_stats, wire=wire)
        self._wire = wire

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._wire.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:1] in (b"K", b"D"):
            self.sender.datagram_received(data, addr)
        else:
            self.receiver.datagram_received(data, addr)

    def close(self) -> None:
        self.receiver.close()
        self.sender.close()
