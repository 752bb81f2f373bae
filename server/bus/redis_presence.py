"""Who is connected to a meeting, across every node of a cluster, kept in Redis.

Layout (``<prefix>`` is ``bus.channel_prefix``):

- ``<prefix>:presence:<meeting_id>`` — a hash; field = session key, value = the entry as JSON
  (it names the ``node_id`` that holds the session);
- ``<prefix>:node:<node_id>`` — this node's liveness key, set with a TTL (``ttl_s``) and
  refreshed every ``refresh_s`` by a task the object owns.

``list()`` ignores, and deletes, the entries of nodes whose liveness key has expired: a node
that crashed stops being present within ``ttl_s`` without anyone cleaning up after it. When the
refresh finds its own liveness key gone (Redis restarted, or this node stalled longer than the
TTL) it writes back every entry it holds, so presence heals itself once Redis is back.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from meetings.presence import PresenceEntry, ordered

from .redis_bus import CONNECTION_ERRORS

log = logging.getLogger(__name__)


def encode(entry: PresenceEntry) -> str:
    return json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":"))


def decode(data: bytes | str) -> PresenceEntry:
    """An entry read back from Redis, or ``ValueError`` saying what is wrong with it."""
    try:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise TypeError("not a JSON object")
        return PresenceEntry.from_dict(value)
    except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


class RedisPresence:
    """:class:`meetings.presence.PresenceStore` in Redis, shared by the nodes of a cluster.

    ``node_id`` should be the node's bus ``node_id``: every entry added here is stored as held
    by this node. :meth:`start` (also done by the first :meth:`add`) starts the refresher."""

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        prefix: str = "diemcau",
        ttl_s: float = 15.0,
        refresh_s: float | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.node_id = node_id
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.refresh_s = refresh_s if refresh_s is not None else ttl_s / 3
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            socket_connect_timeout=2.0, socket_keepalive=True)
        self._local: dict[int, dict[str, str]] = {}  # meeting -> key -> JSON, held by this node
        self._removed: dict[int, set[str]] = {}  # removals Redis has not seen yet
        self._unsynced = False  # an add/remove failed: write everything back on next refresh
        self._lock = asyncio.Lock()  # a write-back never interleaves with an add/remove
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    def meeting_key(self, meeting_id: int) -> str:
        return f"{self.prefix}:presence:{meeting_id}"

    def node_key(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    async def start(self) -> None:
        """Mark this node alive and start refreshing; Redis being down is logged, not raised."""
        if self._refresher is not None or self._closed:
            return
        try:
            await self._refresh()
        except CONNECTION_ERRORS as exc:
            log.error("presence: Redis unreachable (%s); retrying in the background", exc)
        self._refresher = asyncio.create_task(self._run(), name=f"redis-presence-{self.node_id}")

    async def add(self, meeting_id: int, entry: PresenceEntry) -> None:
        """Record ``entry`` in the meeting (replacing one with the same key), as held by this
        node. While Redis is down the entry is kept here and written once Redis answers."""
        if self._closed:
            raise RuntimeError("the presence store is closed")
        if self._refresher is None:
            await self.start()
        if entry.node_id != self.node_id:
            entry = dataclasses.replace(entry, node_id=self.node_id)
        data = encode(entry)
        self._local.setdefault(meeting_id, {})[entry.key] = data
        self._removed.get(meeting_id, set()).discard(entry.key)
        try:
            async with self._lock:
                await self._client.hset(self.meeting_key(meeting_id), entry.key, data)
        except CONNECTION_ERRORS as exc:
            self._unsynced = True
            log.warning("presence: add %s to meeting %d postponed: %s", entry.key, meeting_id, exc)

    async def remove(self, meeting_id: int, key: str) -> PresenceEntry | None:
        """Forget the session ``key``; returns what was there, if anything."""
        held = self._local.get(meeting_id, {})
        data: bytes | str | None = held.pop(key, None)
        if not held:
            self._local.pop(meeting_id, None)
        try:
            async with self._lock, self._client.pipeline(transaction=True) as pipe:
                pipe.hget(self.meeting_key(meeting_id), key)
                pipe.hdel(self.meeting_key(meeting_id), key)
                stored, _ = await pipe.execute()
            data = data or stored
        except CONNECTION_ERRORS as exc:
            self._unsynced = True
            self._removed.setdefault(meeting_id, set()).add(key)
            log.warning("presence: remove %s from meeting %d postponed: %s", key, meeting_id, exc)
        if data is None:
            return None
        try:
            return decode(data)
        except ValueError:
            return None

    async def list(self, meeting_id: int) -> list[PresenceEntry]:
        """Everyone in the meeting on a live node, ordered by ``since`` then ``key``; entries
        of dead nodes are deleted. While Redis is down: this node's own sessions (logged)."""
        name = self.meeting_key(meeting_id)
        try:
            return await self._list(name)
        except CONNECTION_ERRORS as exc:
            log.warning("presence: Redis unreachable, listing this node's sessions only: %s", exc)
            return ordered([decode(data) for data in self._local.get(meeting_id, {}).values()])

    async def _list(self, name: str) -> builtins.list[PresenceEntry]:
        raw: dict[bytes, bytes] = await self._client.hgetall(name)  # type: ignore[assignment]
        entries: dict[bytes, PresenceEntry] = {}
        stale: builtins.list[bytes] = []
        for field_name, data in raw.items():
            try:
                entries[field_name] = decode(data)
            except ValueError as exc:
                log.warning("presence: dropping a malformed entry in %s: %s", name, exc)
                stale.append(field_name)
        nodes = sorted({e.node_id for e in entries.values()} - {self.node_id})
        alive = {self.node_id}
        if nodes:
            async with self._client.pipeline(transaction=False) as pipe:
                for node in nodes:
                    pipe.exists(self.node_key(node))
                flags = await pipe.execute()
            alive.update(n for n, flag in zip(nodes, flags) if flag)
        for field_name, entry in builtins.list(entries.items()):
            if entry.node_id not in alive:
                stale.append(field_name)
                del entries[field_name]
        if stale:
            await self._client.hdel(name, *stale)
        return ordered(builtins.list(entries.values()))

    async def close(self) -> None:
        """Stop refreshing, take this node's entries and liveness key out; safe twice."""
        if self._closed:
            return
        self._closed = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for meeting_id, held in self._local.items():
                    pipe.hdel(self.meeting_key(meeting_id), *held)
                pipe.delete(self.node_key(self.node_id))
                await pipe.execute()
        except CONNECTION_ERRORS as exc:
            log.warning("presence: could not clean up on close (entries expire with the node "
                        "key): %s", exc)
        self._local.clear()
        await self._client.aclose()

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self._refresh()
            except CONNECTION_ERRORS as exc:
                (log.debug if failing else log.warning)("presence: refresh failed: %s", exc)
                failing = True
            else:
                if failing:
                    log.info("presence: Redis answers again")
                failing = False

    async def _refresh(self) -> None:
        """Extend this node's liveness; if it had expired (Redis restarted, or this node
        stalled) or an add/remove failed, write back this node's whole state."""
        alive = await self._client.pexpire(self.node_key(self.node_id), self.ttl_ms)
        if alive and not self._unsynced:
            return
        async with self._lock:
            await self._write_back()

    async def _write_back(self) -> None:
        self._unsynced = False
        removed, self._removed = self._removed, {}
        try:
            async with self._client.pipeline(transaction=True) as pipe:  # MULTI: all at once
                pipe.set(self.node_key(self.node_id), "1", px=self.ttl_ms)
                for meeting_id, keys in removed.items():
                    pipe.hdel(self.meeting_key(meeting_id), *keys)
                for meeting_id, held in self._local.items():
                    pipe.hset(self.meeting_key(meeting_id), mapping=held)  # type: ignore[arg-type]
                await pipe.execute()
        except BaseException:
            self._unsynced = True
            for meeting_id, keys in removed.items():
                self._removed.setdefault(meeting_id, set()).update(keys)
            raise
        if self._local or removed:
            log.info("presence: state written back to Redis (%d meetings)", len(self._local))
