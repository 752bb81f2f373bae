"""The cluster bus: domain events fan out to every node through Redis pub/sub.

Every event, including one published by this node, makes the round trip through Redis, so all
nodes see the events of one topic in the same order (Redis orders each channel).

One bus holds two kinds of connection:

- a pool for ``PUBLISH`` and ``PING`` (redis-py's client, a few quick retries);
- one pub/sub connection, read by a task the bus owns, on which ``SUBSCRIBE`` and
  ``UNSUBSCRIBE`` follow the local subscriptions: the first local subscriber of a topic
  subscribes its channel, the last one to close unsubscribes it. When Redis drops, the reader
  reconnects with capped exponential backoff and subscribes every wanted channel again; events
  published meanwhile are lost (pub/sub keeps nothing), which clients cover by resyncing.

Wire format: channel ``<prefix>:<topic>``, payload the JSON object
``{"origin": node_id, "topic": topic, "event": {...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisError

from meetings.bus import Envelope, Subscription

log = logging.getLogger(__name__)

# What a lost or refused connection raises, from redis-py or the socket layer beneath it.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class RedisBus:
    """:class:`meetings.bus.Bus` over Redis pub/sub, for several server nodes."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "diemcau",
        node_id: str | None = None,
        queue_size: int = 1000,
        confirm_timeout_s: float = 2.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 5.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self.node_id: str = node_id or uuid.uuid4().hex[:12]
        self.prefix: str = prefix
        self.reconnects: int = 0
        """How many times the subscriber connection was re-established after a loss."""
        self.publish_failures: int = 0
        """Events that could not be published because Redis did not answer."""
        self._failing = 0  # events dropped since the last successful publish
        self._queue_size = queue_size
        self._confirm_timeout_s = confirm_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        common: dict[str, Any] = {"socket_connect_timeout": connect_timeout_s,
                                  "socket_keepalive": True}
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), **common)
        # The subscriber connection never retries on its own: the reader task reconnects it.
        self._sub_client: aioredis.Redis = aioredis.Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), **common)
        self._subs: dict[str, set[Subscription]] = {}
        self._remote: set[str] = set()  # topics SUBSCRIBEd on the current pub/sub connection
        self._ready: dict[str, asyncio.Event] = {}  # set once Redis confirmed the SUBSCRIBE
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()  # orders (re)connects and SUBSCRIBE/UNSUBSCRIBE commands
        self._connected = asyncio.Event()
        self._ever_connected = False
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def channel(self, topic: str) -> str:
        return f"{self.prefix}:{topic}"

    @property
    def connected(self) -> bool:
        """Whether the subscriber connection is up (events are being received)."""
        return self._connected.is_set()

    async def start(self) -> None:
        """Start the reader; waits briefly for the first connection but never fails on it."""
        if self._reader is not None or self._closed:
            return
        self._reader = asyncio.create_task(self._run(), name=f"redis-bus-reader-{self.node_id}")
        try:
            await asyncio.wait_for(self._connected.wait(), self._confirm_timeout_s)
        except TimeoutError:
            log.error("redis bus: no connection to Redis yet; retrying in the background")

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        """Publish to every node's subscribers of ``topic`` (this node's too, via Redis).

        A non-JSON-able event raises ``TypeError``. When Redis does not answer the event is
        dropped and logged, not raised: the state it announces is already stored, and clients
        resync on reconnect."""
        payload = json.dumps({"origin": self.node_id, "topic": topic, "event": dict(event)},
                             ensure_ascii=False, separators=(",", ":"))
        try:
            await self._client.publish(self.channel(topic), payload)
        except CONNECTION_ERRORS as exc:
            self.publish_failures += 1
            self._failing += 1
            (log.warning if self._failing == 1 else log.debug)(
                "redis bus: event %s on %s dropped: %s", event.get("type"), topic, exc)
            return
        if self._failing:
            log.info("redis bus: publishing again after %d dropped events", self._failing)
            self._failing = 0

    async def subscribe(self, topic: str) -> Subscription:
        """A local subscription; returns once Redis confirmed the channel (or, while Redis is
        down, at once: the channel is subscribed on reconnect)."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        sub = Subscription(topic, self._unsubscribe, self._queue_size)
        self._subs.setdefault(topic, set()).add(sub)
        await self._sync(topic)
        ready = self._ready.get(topic)
        if ready is not None and self.connected and not ready.is_set():
            try:
                await asyncio.wait_for(ready.wait(), self._confirm_timeout_s)
            except TimeoutError:
                log.warning("redis bus: SUBSCRIBE %s not confirmed yet", self.channel(topic))
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.topic]
            await self._sync(sub.topic)

    async def _sync(self, topic: str) -> None:
        """Make the pub/sub connection's subscription to ``topic`` match the local ones."""
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None or self._closed:
                return  # the reader subscribes every wanted topic when it (re)connects
            wanted = topic in self._subs
            if wanted == (topic in self._remote):
                return
            try:
                if wanted:
                    self._ready.setdefault(topic, asyncio.Event())
                    await pubsub.subscribe(self.channel(topic))
                    self._remote.add(topic)
                else:
                    self._ready.pop(topic, None)
                    self._remote.discard(topic)
                    await pubsub.unsubscribe(self.channel(topic))
            except CONNECTION_ERRORS as exc:
                log.warning("redis bus: (un)subscribe %s failed: %s", topic, exc)
                if pubsub.connection is not None:  # make the reader notice and reconnect
                    await pubsub.connection.disconnect(nowait=True)

    async def ping(self) -> None:
        """A real PING; also fails while the subscriber connection is down."""
        await self._client.ping()
        if not self.connected:
            raise ConnectionError("redis bus subscriber connection is down (reconnecting)")

    async def close(self) -> None:
        """Stop the reader, close every subscription and both connections; safe twice."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._drop_pubsub()
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
        await self._client.aclose()
        await self._sub_client.aclose()

    # -- the reader task ---------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff_initial_s
        while True:
            try:
                pubsub = await self._connect()
                delay = self._backoff_initial_s
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except CONNECTION_ERRORS as exc:
                if self.connected:
                    log.warning("redis bus: lost Redis (%s); reconnecting", exc)
                else:
                    log.debug("redis bus: cannot reach Redis: %s", exc)
            except Exception:  # a bug, not the network: log it and keep the node's bus alive
                log.exception("redis bus: reader failed; reconnecting")
            await self._drop_pubsub()
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self._backoff_max_s)

    async def _connect(self) -> PubSub:
        async with self._lock:
            pubsub = self._sub_client.pubsub()
            try:
                await pubsub.connect()
                topics = set(self._subs)
                self._ready = {t: self._ready.get(t) or asyncio.Event() for t in topics}
                if topics:
                    await pubsub.subscribe(*(self.channel(t) for t in topics))
            except BaseException:
                await pubsub.aclose()
                raise
            self._pubsub, self._remote = pubsub, topics
        if self._ever_connected:
            self.reconnects += 1
            log.info("redis bus: reconnected, %d channels subscribed again", len(topics))
        self._ever_connected = True
        self._connected.set()
        return pubsub

    async def _drop_pubsub(self) -> None:
        self._connected.clear()
        async with self._lock:
            pubsub, self._pubsub = self._pubsub, None
            self._remote = set()
            for ready in self._ready.values():
                ready.clear()
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except CONNECTION_ERRORS as exc:
                log.debug("redis bus: closing the pub/sub connection: %s", exc)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = _text(message["channel"])
            head = self.prefix + ":"
            topic = channel[len(head):] if channel.startswith(head) else None
            if kind == "subscribe" and topic is not None:
                ready = self._ready.get(topic)
                if ready is not None:
                    ready.set()
            elif kind == "message" and topic is not None:
                self._deliver(topic, message["data"])

    def _deliver(self, topic: str, data: bytes | str) -> None:
        subs = self._subs.get(topic)
        if not subs:
            return
        try:
            envelope = _parse(data, topic)
        except (ValueError, TypeError) as exc:
            log.warning("redis bus: skipped a malformed message on %s: %s",
                        self.channel(topic), exc)
            return
        for sub in list(subs):
            sub.deliver(envelope)


def _text(value: bytes | str | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value or ""


def _parse(data: bytes | str, topic: str) -> Envelope:
    """The envelope in one pub/sub payload; ``ValueError``/``TypeError`` say what is wrong."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise TypeError("not a JSON object")
    origin, event = body.get("origin"), body.get("event")
    if not isinstance(origin, str) or not isinstance(event, dict):
        raise TypeError("needs a string 'origin' and an object 'event'")
    if body.get("topic") != topic:
        raise ValueError(f"topic {body.get('topic')!r} does not match its channel")
    return Envelope(topic, event, origin)
