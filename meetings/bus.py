"""The event bus: domain events fan out to every server node that cares.

Two implementations share this interface: :class:`MemoryBus` (one process, the default) and
``server.bus.redis_bus.RedisBus`` (Redis pub/sub, for a cluster). Events are JSON-able
mappings with a ``type``; topics are strings like ``meeting.12``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Envelope:
    """One event as delivered to a subscriber."""

    topic: str
    """Where it was published, e.g. ``meeting.12``."""
    event: Mapping[str, Any]
    """The event itself: JSON-able, with a ``type`` key."""
    origin: str
    """``node_id`` of the bus that published it (lets a node skip its own events)."""


class Subscription:
    """A bounded queue of envelopes for one topic. A consumer that falls ``maxsize`` behind
    loses the oldest events (counted in ``dropped``) rather than growing memory."""

    def __init__(self, topic: str, on_close: Any, maxsize: int = 1000) -> None:
        self.topic = topic
        self._queue: asyncio.Queue[Envelope | None] = asyncio.Queue(maxsize)
        self._on_close = on_close
        self.dropped = 0
        self.closed = False

    def deliver(self, envelope: Envelope) -> None:
        if self.closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10000 == 0:
                log.warning("bus subscriber on %s is slow: %d events dropped", self.topic, self.dropped)
        self._queue.put_nowait(envelope)

    async def get(self) -> Envelope | None:
        """The next envelope, or None once closed."""
        if self.closed and self._queue.empty():
            return None
        return await self._queue.get()

    def pending(self) -> int:
        """Envelopes waiting to be read."""
        return self._queue.qsize()

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Envelope]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        await self._on_close(self)


class Bus(Protocol):
    node_id: str

    async def start(self) -> None: ...

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None: ...

    async def subscribe(self, topic: str) -> Subscription: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class MemoryBus:
    """In-process bus: ``publish`` delivers to local subscribers synchronously."""

    node_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _subs: dict[str, set[Subscription]] = field(default_factory=dict)

    async def start(self) -> None:
        return None

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        envelope = Envelope(topic, dict(event), self.node_id)
        for sub in list(self._subs.get(topic, ())):
            sub.deliver(envelope)

    async def subscribe(self, topic: str) -> Subscription:
        sub = Subscription(topic, self._unsubscribe)
        self._subs.setdefault(topic, set()).add(sub)
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
