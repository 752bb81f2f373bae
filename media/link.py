"""A packet link between two media rooms over a datagram socket: the building block of media
worker processes (and later of the cascade between nodes).

The sending side (:class:`LinkSender`) attaches one packet sink per forwarded source and
writes each packet **once per link** (not once per subscriber); the receiving side
(:class:`LinkReceiver`) owns a *remote* :class:`media.source.Source` per announced track,
pushes the packets into it and sends its keyframe requests back, where they become
``Source.request_keyframe`` on the real source (rate-limited there).

Wire format (version 1), one datagram per message, network byte order:

* ``A`` announce: ``"A" u16 index`` + UTF-8 JSON ``{source_id, participant_id, codec:
  {kind, name, clock_rate, packetization_mode, profile}}``
* ``P`` packet: ``"P" u16 index u16 seq u32 timestamp u8 flags u8 level`` + payload
  (flags: 1 marker, 2 audio level present); keyframe/VP8 facts are re-parsed on arrival.
* ``K`` keyframe request (receiver → sender): ``"K" u16 index``
* ``E`` end of source: ``"E" u16 index``
"""

from __future__ import annotations

import asyncio
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
MAX_DATAGRAM = 65000


def _write(transport: asyncio.DatagramTransport | None, sock: Any, data: bytes) -> bool:
    """Send one datagram on the connected (non-blocking) socket; False when dropped (closed,
    too big, or the socket buffer is full: a slow far end loses packets, never memory)."""
    if transport is None or transport.is_closing() or sock is None or len(data) > MAX_DATAGRAM:
        return False
    try:
        sock.send(data)
    except (BlockingIOError, InterruptedError, ConnectionError, OSError):
        return False
    return True


class _Forward:
    """The packet sink the sender attaches to one source."""

    __slots__ = ("_link", "index")

    def __init__(self, link: LinkSender, index: int) -> None:
        self._link = link
        self.index = index

    def on_packet(self, source: Source, packet: MediaPacket, ntp_time: int) -> None:
        level = packet.audio_level
        flags = (1 if packet.marker else 0) | (2 if level is not None else 0)
        self._link.send(_PACKET.pack(b"P", self.index, packet.sequence_number,
                                     packet.timestamp, flags, level or 0) + packet.payload)

    def on_source_ended(self, source: Source) -> None:
        self._link.ended(self.index)


class LinkSender(asyncio.DatagramProtocol):
    """Forwards sources to the far end of a connected datagram socket (e.g. one end of
    ``socket.socketpair(AF_UNIX, SOCK_DGRAM)``; give the same socket to
    ``loop.create_datagram_endpoint(lambda: LinkSender(sock), sock=sock)``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._sock = sock
        self._by_index: dict[int, tuple[Source, _Forward]] = {}
        self._next = 0
        self.sent = 0
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram transport

    def send(self, data: bytes) -> None:
        if _write(self._transport, self._sock, data):
            self.sent += 1
        else:
            self.dropped += 1

    def forward(self, source: Source) -> int:
        """Announce ``source`` and forward its packets; its link index."""
        index = self._next
        self._next += 1
        codec = source.codec
        self.send(_INDEX.pack(b"A", index) + json.dumps({
            "source_id": source.source_id, "participant_id": source.participant_id,
            "codec": {"kind": codec.kind, "name": codec.name, "clock_rate": codec.clock_rate,
                      "packetization_mode": codec.packetization_mode,
                      "profile": codec.profile}}).encode("utf-8"))
        sink = _Forward(self, index)
        self._by_index[index] = (source, sink)
        source.add_sink(sink)
        return index

    def stop(self, index: int) -> None:
        entry = self._by_index.pop(index, None)
        if entry is not None:
            entry[0].remove_sink(entry[1])
            self.send(_INDEX.pack(b"E", index))

    def ended(self, index: int) -> None:
        if self._by_index.pop(index, None) is not None:
            self.send(_INDEX.pack(b"E", index))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) == _INDEX.size and data[:1] == b"K":
            entry = self._by_index.get(_INDEX.unpack(data)[1])
            if entry is not None:
                entry[0].request_keyframe()

    def close(self) -> None:
        for index in list(self._by_index):
            self.stop(index)
        if self._transport is not None:
            self._transport.close()


class LinkReceiver(asyncio.DatagramProtocol):
    """Turns a link's datagrams into remote sources (``on_source`` / ``on_end`` tell the
    owner, e.g. ``Room.add_source`` / ``Room.remove_source``)."""

    def __init__(self, sock: socket.socket, *, on_source: Callable[[Source], None],
                 on_end: Callable[[Source], None], min_keyframe_interval: float = 0.5) -> None:
        self._on_source = on_source
        self._on_end = on_end
        self._interval = min_keyframe_interval
        self._transport: asyncio.DatagramTransport | None = None
        self._sock = sock
        self.sources: dict[int, Source] = {}
        self.malformed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram transport

    def _ask_keyframe(self, index: int) -> Callable[[], None]:
        def ask() -> None:
            _write(self._transport, self._sock, _INDEX.pack(b"K", index))
        return ask

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
        elif kind == b"A":
            index = _INDEX.unpack_from(data)[1]
            info = json.loads(data[_INDEX.size:].decode("utf-8"))
            c = info["codec"]
            codec = CodecSpec(str(c["kind"]), str(c["name"]), int(c["clock_rate"]),
                              str(c["packetization_mode"]), str(c["profile"]))
            source = Source(str(info["source_id"]), str(info["participant_id"]), codec,
                            request_keyframe=self._ask_keyframe(index),
                            min_keyframe_interval=self._interval)
            self.sources[index] = source
            self._on_source(source)
        elif kind == b"E":
            source = self.sources.pop(_INDEX.unpack_from(data)[1], None)
            if source is not None:
                self._on_end(source)
        else:
            raise ValueError(f"unknown message {kind!r}")

    def close(self) -> None:
        for source in list(self.sources.values()):
            self._on_end(source)
        self.sources.clear()
        if self._transport is not None:
            self._transport.close()
