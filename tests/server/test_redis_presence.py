"""RedisPresence against a private redis-server: two objects stand for two server nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from meetings.presence import PointRef, PresenceEntry, UserRef
from server.bus.redis_presence import RedisPresence
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.redis

PresenceFactory = Callable[..., Awaitable[RedisPresence]]


@pytest.fixture
async def make_presence(redis_url: str, redis_prefix: str) -> AsyncIterator[PresenceFactory]:
    made: list[RedisPresence] = []

    async def factory(node_id: str, **kwargs: Any) -> RedisPresence:
        presence = RedisPresence(redis_url, node_id=node_id, prefix=redis_prefix, **kwargs)
        made.append(presence)
        await presence.start()
        return presence

    yield factory
    for presence in made:
        await presence.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


T0 = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def entry(key: str, label: str = "", *, minute: int = 0, node_id: str = "?") -> PresenceEntry:
    """A point's session joined at T0 + ``minute``."""
    return PresenceEntry(key=key, kind="point", label=label or f"Điểm cầu {key}",
                         since=T0 + timedelta(minutes=minute), node_id=node_id,
                         point=PointRef(f"X-{key}", label or f"Điểm cầu {key}", "commune"))


def keys(entries: list[PresenceEntry]) -> list[str]:
    return [e.key for e in entries]


async def until_async(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_both_nodes_see_every_session(make_presence: PresenceFactory) -> None:
    a, b = await make_presence("node-a"), await make_presence("node-b")
    chair = PresenceEntry(key="s1", kind="user", label="Chủ tọa Nguyễn Văn Á", since=T0,
                          node_id="node-a", user=UserRef("chutoa", "Chủ tọa Nguyễn Văn Á", "chair"))
    await b.add(1, entry("s2", minute=1))
    await a.add(1, chair)
    await b.add(1, entry("s0", minute=1))
    await b.add(2, entry("s3"))
    for node in (a, b):
        listed = await node.list(1)
        assert keys(listed) == ["s1", "s0", "s2"]  # by since, then key
        assert [e.node_id for e in listed] == ["node-a", "node-b", "node-b"]
        assert listed[0] == chair
        assert keys(await node.list(2)) == ["s3"]
    assert await a.remove(1, "s1") == chair
    assert keys(await b.list(1)) == ["s0", "s2"]
    assert await a.remove(1, "s1") is None  # removing twice / unknown is harmless
    removed = await a.remove(1, "s2")  # another node's session (e.g. kicked by the chair)
    assert removed is not None and removed.node_id == "node-b"
    assert keys(await a.list(99)) == []


async def test_entries_are_stored_as_held_by_this_node(make_presence: PresenceFactory) -> None:
    a = await make_presence("node-a")
    await a.add(1, entry("s1", node_id="elsewhere"))
    assert [e.node_id for e in await a.list(1)] == ["node-a"]


async def test_a_dead_nodes_entries_disappear_after_the_ttl(make_presence: PresenceFactory,
                                                           raw: aioredis.Redis) -> None:
    a = await make_presence("node-a", ttl_s=0.3, refresh_s=0.1)
    b = await make_presence("node-b", ttl_s=0.3, refresh_s=0.1)
    await a.add(1, entry("s1"))
    await b.add(1, entry("s2"))
    # node-b "crashes": its refresher stops, nothing is cleaned up.
    assert b._refresher is not None
    b._refresher.cancel()
    await asyncio.sleep(0.2)
    assert keys(await a.list(1)) == ["s1", "s2"]  # still within the TTL
    await asyncio.sleep(0.4)
    assert keys(await a.list(1)) == ["s1"]
    assert await raw.hkeys(a.meeting_key(1)) == [b"s1"]  # list() cleaned the hash up


async def test_close_takes_the_nodes_sessions_out(make_presence: PresenceFactory,
                                                  raw: aioredis.Redis) -> None:
    a, b = await make_presence("node-a"), await make_presence("node-b")
    await a.add(1, entry("s1"))
    await b.add(1, entry("s2"))
    await b.close()
    await b.close()  # safe twice
    assert keys(await a.list(1)) == ["s1"]
    assert not await raw.exists(b.node_key("node-b"))
    assert b._refresher is None


async def test_entries_come_back_after_redis_restart(make_presence: PresenceFactory,
                                                     redis_server: RedisServer) -> None:
    a = await make_presence("node-a", ttl_s=1.0, refresh_s=0.05)
    b = await make_presence("node-b", ttl_s=1.0, refresh_s=0.05)
    await a.add(1, entry("s1"))
    await b.add(1, entry("s2"))
    redis_server.restart()  # no persistence: Redis comes back empty

    async def healed() -> bool:
        return keys(await a.list(1)) == ["s1", "s2"]

    await until_async(healed)


async def test_malformed_entries_are_dropped(make_presence: PresenceFactory,
                                             raw: aioredis.Redis) -> None:
    a = await make_presence("node-a")
    await a.add(1, entry("s1"))
    naive = a._local[1]["s1"].replace("Z", "")  # a timestamp without its time zone
    await raw.hset(a.meeting_key(1), mapping={"junk": "not json", "odd": '{"key": 1}',
                                              "list": "[1]", "naive": naive})
    assert keys(await a.list(1)) == ["s1"]
    assert await raw.hkeys(a.meeting_key(1)) == [b"s1"]


async def test_works_through_a_redis_outage(redis_server: RedisServer, redis_prefix: str) -> None:
    redis_server.stop()
    a = RedisPresence(redis_server.url, node_id="node-a", prefix=redis_prefix, refresh_s=0.05)
    b = RedisPresence(redis_server.url, node_id="node-b", prefix=redis_prefix, refresh_s=0.05)
    try:
        await a.start()  # logs, does not raise
        await b.start()
        await a.add(1, entry("s1"))
        await a.add(1, entry("gone"))
        await a.remove(1, "gone")
        assert keys(await a.list(1)) == ["s1"]  # this node's own sessions while Redis is down
        assert keys(await b.list(1)) == []
        redis_server.start()

        async def b_sees_a() -> bool:
            return keys(await b.list(1)) == ["s1"]

        await until_async(b_sees_a)
    finally:
        await a.close()
        await b.close()


async def test_failed_operations_are_replayed(make_presence: PresenceFactory, raw: aioredis.Redis,
                                              redis_server: RedisServer) -> None:
    a = await make_presence("node-a", refresh_s=0.05)
    await a.add(1, entry("s1"))
    await a.add(1, entry("s2"))
    assert a._refresher is not None
    a._refresher.cancel()  # replay by hand, deterministically
    redis_server.stop()
    await a.remove(1, "s1")
    await a.add(1, entry("s3"))
    redis_server.start()
    await raw.hset(a.meeting_key(1), mapping={"s1": a._local[1]["s2"].replace('"s2"', '"s1"')})
    await raw.set(a.node_key("node-a"), "1")  # as if Redis had only blipped
    await a._refresh()
    assert sorted(await raw.hkeys(a.meeting_key(1))) == [b"s2", b"s3"]
