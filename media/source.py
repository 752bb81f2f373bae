"""A published stream (nguồn): fans packets out to sinks and rate-limits keyframe requests
to whoever feeds it. The feeder may be a local aiortc peer (media.peer), or later a worker
process or an upstream node of the cascade: anything that calls :meth:`Source.push` and
answers keyframe requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from media.codecs import CodecSpec
from media.packet import MediaPacket

logger = logging.getLogger(__name__)

KeyframeRequester = Callable[[], None]
"Asks the feeder for a keyframe (e.g. sends a PLI to the publisher). Must not block."

LevelObserver = Callable[[int, int], None]
"""Told ``(level, count)`` for an audio source: the RFC 6464 level byte (0..127 = -dBov) of
one packet (count 1), or the mean of ``count`` packets a link summarised (:meth:`Source.feed_level`).
Observers do not make a source "wanted": speaker detection listens without pulling packets."""

DemandListener = Callable[[bool], None]
"""Told True when a source gets its first sink and False when its last sink goes: a remote
source (media.link) uses it to pull a video stream over the link only while it is needed."""


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp."""
    t = time.time() + 2_208_988_800
    return (int(t) << 32) | int((t % 1) * 4_294_967_296)


class PacketSink(Protocol):
    """Whatever consumes a source's packets (an outgoing stream to a subscriber, later a
    link to a worker process or a downstream node)."""

    def on_packet(self, source: Source, packet: MediaPacket, ntp_time: int) -> None:
        """Called for every packet, synchronously; must be cheap and must not raise."""

    def on_source_ended(self, source: Source) -> None:
        """The source closed (publisher left); the sink must forget it."""


@dataclass(slots=True)
class SourceStats:
    """Counters of one source."""

    packets: int = 0
    bytes: int = 0
    keyframes: int = 0
    retransmitted: int = 0
    "Packets that arrived as RTX retransmissions (repairs of the publisher's hop)."
    keyframe_requests: int = 0
    "Requests asked of the source (by sinks or subscribers)."
    keyframe_requests_sent: int = 0
    "Requests passed to the feeder after rate limiting."
    sink_errors: int = 0
    frames: int = 0
    "Video frames (packets with the RTP marker bit)."


class Source:
    """One published track: forwards each packet to every attached sink and turns keyframe
    requests into at most one request to the feeder per ``min_keyframe_interval`` (a request
    made inside the interval is sent when it ends, unless a keyframe came meanwhile)."""

    def __init__(self, source_id: str, participant_id: str, codec: CodecSpec, *,
                 request_keyframe: KeyframeRequester | None = None,
                 min_keyframe_interval: float = 0.5, mirror_stats: bool = False) -> None:
        self.source_id = source_id
        self.participant_id = participant_id
        self.codec = codec
        self.stats = SourceStats()
        # A mirrored source's ``stats`` are copied from where it is really fed (a worker
        # process); what passes through here is counted apart and not shown.
        self._count = SourceStats() if mirror_stats else self.stats
        self._on_demand: DemandListener | None = None
        self._request_keyframe = request_keyframe
        self._min_interval = min_keyframe_interval
        self._sinks: dict[PacketSink, None] = {}
        self._fanout: tuple[PacketSink, ...] = ()
        self._level_observers: tuple[LevelObserver, ...] = ()
        self._last_request = -1e9
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self.last_keyframe_at: float | None = None

    @property
    def kind(self) -> str:
        return self.codec.kind

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sinks(self) -> tuple[PacketSink, ...]:
        return self._fanout

    @property
    def fed_packets(self) -> int:
        """Packets pushed through this object (for a mirrored source, unlike ``stats``: what
        really crossed the link)."""
        return self._count.packets

    def set_keyframe_requester(self, request_keyframe: KeyframeRequester | None) -> None:
        self._request_keyframe = request_keyframe

    def set_demand_listener(self, listener: DemandListener | None) -> None:
        """``listener(True)`` on the first sink, ``listener(False)`` when the last goes."""
        self._on_demand = listener

    def add_sink(self, sink: PacketSink) -> None:
        if self._closed:
            raise RuntimeError("source is closed")
        first = not self._sinks
        self._sinks[sink] = None
        self._fanout = tuple(self._sinks)
        if first:
            self._demand(True)

    def remove_sink(self, sink: PacketSink) -> None:
        if sink in self._sinks:
            del self._sinks[sink]
            self._fanout = tuple(self._sinks)
            if not self._sinks:
                self._demand(False)

    def add_level_observer(self, observer: LevelObserver) -> None:
        """Get the audio level of every packet (or link summary) without being a sink."""
        if observer not in self._level_observers:
            self._level_observers += (observer,)

    def remove_level_observer(self, observer: LevelObserver) -> None:
        self._level_observers = tuple(o for o in self._level_observers if o != observer)

    def feed_level(self, level: int, count: int) -> None:
        """Levels of ``count`` packets that were not pushed here (a link sends a summary of
        an audio source nobody on this side wants the packets of)."""
        if self._closed:
            return
        for observer in self._level_observers:
            try:
                observer(level, count)
            except Exception:
                logger.exception("level observer of %s failed", self.source_id)

    def _demand(self, wanted: bool) -> None:
        if self._on_demand is not None and not self._closed:
            try:
                self._on_demand(wanted)
            except Exception:
                logger.exception("demand listener of %s failed", self.source_id)

    def push(self, packet: MediaPacket) -> None:
        """Forward one packet to every sink. A failing sink is detached; others go on."""
        if self._closed:
            return
        stats = self._count
        stats.packets += 1
        stats.bytes += len(packet.payload)
        if self.codec.kind == "video":
            if packet.marker:
                stats.frames += 1
            if packet.keyframe:
                stats.keyframes += 1
                self.last_keyframe_at = time.monotonic()
                if self._timer is not None:  # the pending request is answered
                    self._timer.cancel()
                    self._timer = None
        elif self._level_observers and packet.audio_level is not None:
            self.feed_level(packet.audio_level, 1)
        if not self._fanout:
            return
        ntp = ntp_now()
        for sink in self._fanout:
            try:
                sink.on_packet(self, packet, ntp)
            except Exception:
                stats.sink_errors += 1
                logger.exception("sink %r failed on %s; detaching it", sink, self.source_id)
                self.remove_sink(sink)

    def request_keyframe(self) -> None:
        """Ask for a keyframe, rate-limited (see class doc). Audio sources ignore it."""
        if self._closed or self.codec.kind != "video":
            return
        self._count.keyframe_requests += 1
        wait = self._last_request + self._min_interval - time.monotonic()
        if wait <= 0:
            self._send_request()
        elif self._timer is None:
            self._timer = self._loop.call_later(wait, self._send_request)

    def _send_request(self) -> None:
        self._timer = None
        if self._closed or self._request_keyframe is None:
            return
        self._last_request = time.monotonic()
        self._count.keyframe_requests_sent += 1
        try:
            self._request_keyframe()
        except Exception:
            logger.exception("keyframe request for %s failed", self.source_id)

    def close(self) -> None:
        """End the source: cancel timers, tell every sink. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sinks, self._sinks, self._fanout = self._fanout, {}, ()
        self._level_observers = ()
        for sink in sinks:
            try:
                sink.on_source_ended(self)
            except Exception:
                logger.exception("sink %r failed to handle end of %s", sink, self.source_id)
        self._request_keyframe = None

    def __repr__(self) -> str:
        return f"Source({self.source_id!r}, {self.codec})"
