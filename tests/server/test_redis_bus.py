"""RedisBus against a private redis-server: two buses stand for two server nodes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from meetings.bus import Envelope, Subscription
from server.app import create_app
from server.bus.redis_bus import CONNECTION_ERRORS, RedisBus
from server.keys import SERVICES
from tests.conftest import REPO, make_config
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.redis

BusFactory = Callable[..., Awaitable[RedisBus]]


@pytest.fixture
async def make_bus(redis_url: str, redis_prefix: str) -> AsyncIterator[BusFactory]:
    buses: list[RedisBus] = []

    async def factory(**kwargs: object) -> RedisBus:
        bus = RedisBus(redis_url, prefix=redis_prefix, **kwargs)  # type: ignore[arg-type]
        buses.append(bus)
        await bus.start()
        return bus

    yield factory
    for bus in buses:
        await bus.close()


async def next_envelope(sub: Subscription, timeout: float = 5.0) -> Envelope:
    envelope = await asyncio.wait_for(sub.get(), timeout)
    assert envelope is not None
    return envelope


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_event_reaches_the_other_node_and_this_one(make_bus: BusFactory) -> None:
    a, b = await make_bus(), await make_bus()
    assert a.node_id != b.node_id
    on_a, on_b = await a.subscribe("meeting.1"), await b.subscribe("meeting.1")
    await a.publish("meeting.1", {"type": "chat", "text": "Xin chào các đại biểu"})
    for sub in (on_a, on_b):
        envelope = await next_envelope(sub)
        assert envelope == Envelope("meeting.1", {"type": "chat", "text": "Xin chào các đại biểu"},
                                    a.node_id)


async def test_topics_are_separate_and_ordered(make_bus: BusFactory) -> None:
    a, b = await make_bus(), await make_bus()
    one, two = await b.subscribe("meeting.1"), await b.subscribe("meeting.2")
    for i in range(200):
        await a.publish("meeting.1", {"type": "n", "i": i})
        if i % 2 == 0:
            await a.publish("meeting.2", {"type": "n", "i": i})
    assert [(await next_envelope(one)).event["i"] for _ in range(200)] == list(range(200))
    assert [(await next_envelope(two)).event["i"] for _ in range(100)] == list(range(0, 200, 2))


async def test_two_publishers_are_seen_in_one_order_everywhere(make_bus: BusFactory) -> None:
    a, b = await make_bus(), await make_bus()
    on_a, on_b = await a.subscribe("meeting.1"), await b.subscribe("meeting.1")

    async def publish(bus: RedisBus) -> None:
        for i in range(50):
            await bus.publish("meeting.1", {"type": "n", "i": i})

    await asyncio.gather(publish(a), publish(b))
    seen_a = [(e.origin, e.event["i"]) for e in [await next_envelope(on_a) for _ in range(100)]]
    seen_b = [(e.origin, e.event["i"]) for e in [await next_envelope(on_b) for _ in range(100)]]
    assert seen_a == seen_b
    assert [i for o, i in seen_a if o == a.node_id] == list(range(50))


async def test_unsubscribe_stops_delivery_and_the_channel(make_bus: BusFactory,
                                                          redis_url: str) -> None:
    a, b = await make_bus(), await make_bus()
    first, second = await b.subscribe("meeting.1"), await b.subscribe("meeting.1")
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert (await client.pubsub_numsub(b.channel("meeting.1")))[0][1] == 1  # one per node
        await first.close()
        await a.publish("meeting.1", {"type": "n", "i": 1})
        assert (await next_envelope(second)).event["i"] == 1
        assert await first.get() is None
        await second.close()
        await until(lambda: not b._subs)
        for _ in range(50):
            if (await client.pubsub_numsub(b.channel("meeting.1")))[0][1] == 0:
                break
            await asyncio.sleep(0.02)
        assert (await client.pubsub_numsub(b.channel("meeting.1")))[0][1] == 0
        again = await b.subscribe("meeting.1")
        await a.publish("meeting.1", {"type": "n", "i": 2})
        assert (await next_envelope(again)).event["i"] == 2
    finally:
        await client.aclose()


async def test_slow_subscriber_drops_oldest_without_holding_others(make_bus: BusFactory) -> None:
    a, b = await make_bus(), await make_bus(queue_size=5)
    slow, fast = await b.subscribe("meeting.1"), await b.subscribe("meeting.1")
    received: list[int] = []
    for i in range(30):
        await a.publish("meeting.1", {"type": "n", "i": i})
        received.append((await next_envelope(fast)).event["i"])
    assert received == list(range(30))
    assert slow.dropped == 25
    assert [(await next_envelope(slow)).event["i"] for _ in range(5)] == list(range(25, 30))


async def test_malformed_messages_are_skipped(make_bus: BusFactory, redis_url: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    bus = await make_bus()
    sub = await bus.subscribe("meeting.1")
    client = aioredis.Redis.from_url(redis_url)
    channel = bus.channel("meeting.1")
    try:
        with caplog.at_level(logging.WARNING, logger="server.bus.redis_bus"):
            for junk in (b"\xff\xfe", b"not json", b"[1,2]", json.dumps({"origin": 1, "event": {}}),
                         json.dumps({"origin": "x", "topic": "meeting.2", "event": {"type": "t"}})):
                await client.publish(channel, junk)
            await bus.publish("meeting.1", {"type": "ok"})
            envelope = await next_envelope(sub)
        assert envelope.event == {"type": "ok"}
        assert sum("malformed" in r.getMessage() for r in caplog.records) == 5
    finally:
        await client.aclose()


async def test_publish_without_redis_is_dropped_not_raised(make_bus: BusFactory,
                                                          redis_server: RedisServer) -> None:
    bus = await make_bus()
    redis_server.stop()
    await bus.publish("meeting.1", {"type": "n"})
    assert bus.publish_failures == 1
    with pytest.raises(CONNECTION_ERRORS):
        await bus.ping()
    with pytest.raises(TypeError):
        await bus.publish("meeting.1", {"type": "n", "bad": object()})


async def test_reconnects_and_resubscribes_after_redis_restart(make_bus: BusFactory,
                                                               redis_server: RedisServer) -> None:
    a, b = await make_bus(), await make_bus()
    subs = [await b.subscribe(f"meeting.{i}") for i in range(3)]
    redis_server.restart(kill=True)
    await until(lambda: a.connected and b.connected and b.reconnects >= 1)
    await b.ping()
    for i, sub in enumerate(subs):
        await a.publish(f"meeting.{i}", {"type": "after", "i": i})
        assert (await next_envelope(sub)).event == {"type": "after", "i": i}
    # A topic first subscribed while Redis is down is subscribed on reconnect.
    redis_server.stop()
    await until(lambda: not b.connected)
    late = await asyncio.wait_for(b.subscribe("meeting.9"), 1.0)
    redis_server.start()
    await until(lambda: a.connected and b.connected)
    await a.publish("meeting.9", {"type": "late"})
    assert (await next_envelope(late)).event == {"type": "late"}


async def test_survives_redis_dropping_its_subscriber_connection(make_bus: BusFactory,
                                                                  redis_url: str) -> None:
    """Redis itself closes pub/sub clients that fall behind (client-output-buffer-limit)."""
    a, b = await make_bus(), await make_bus()
    sub = await b.subscribe("meeting.1")
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.client_kill_filter(_type="pubsub") >= 1
    finally:
        await client.aclose()
    await until(lambda: b.reconnects >= 1 and b.connected)
    await a.publish("meeting.1", {"type": "after"})
    assert (await next_envelope(sub)).event == {"type": "after"}


async def test_start_without_redis_then_connects(redis_server: RedisServer,
                                                 redis_prefix: str) -> None:
    redis_server.stop()
    bus = RedisBus(redis_server.url, prefix=redis_prefix, confirm_timeout_s=0.2)
    try:
        await bus.start()
        assert not bus.connected
        sub = await bus.subscribe("meeting.1")
        redis_server.start()
        await until(lambda: bus.connected)
        await bus.publish("meeting.1", {"type": "n"})
        assert (await next_envelope(sub)).event == {"type": "n"}
    finally:
        await bus.close()
        await bus.close()  # safe twice
    assert sub.closed and await sub.get() is None


async def test_close_ends_subscriptions_and_reader(make_bus: BusFactory) -> None:
    bus = await make_bus()
    sub = await bus.subscribe("meeting.1")
    reader = bus._reader
    assert reader is not None
    await bus.close()
    assert reader.done() and sub.closed
    assert [e async for e in sub] == []
    with pytest.raises(RuntimeError):
        await bus.subscribe("meeting.1")


@pytest.mark.slow
@pytest.mark.parametrize("require", ["", "1"])
def test_without_redis_server_tests_skip_or_fail(require: str, tmp_path: Path) -> None:
    """No binary: the Redis tests are skipped, or fail under DIEMCAU_REQUIRE_REDIS=1."""
    env = {**os.environ, "DIEMCAU_REDIS_SERVER": str(tmp_path / "missing"),
           "DIEMCAU_REQUIRE_REDIS": require}
    test = "tests/server/test_redis_presence.py::test_entries_are_stored_as_held_by_this_node"
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rsE", test]
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    if require:
        assert result.returncode == 1, result.stdout
        assert "DIEMCAU_REQUIRE_REDIS=1 but redis-server is not installed" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout and "redis-server is not installed" in result.stdout


# -- through the application (config bus.backend=redis) ----------------------------------------


async def test_healthz_reports_redis_and_degrades_without_it(
        aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path,
        redis_server: RedisServer, redis_url: str, redis_prefix: str) -> None:
    config = make_config(tmp_path, **{"bus.backend": "redis", "bus.redis_url": redis_url,
                                      "bus.channel_prefix": redis_prefix})
    client = await aiohttp_client(create_app(config))
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "ok" and body["bus"] == "redis"
    assert body["checks"]["bus"].startswith("ok")

    redis_server.stop()
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 503, body
    assert body["status"] == "degraded" and body["checks"]["bus"].startswith("error")

    redis_server.start()
    bus = client.app[SERVICES].bus
    assert isinstance(bus, RedisBus)
    await until(lambda: bus.connected)
    resp = await client.get("/healthz")
    assert resp.status == 200


async def test_two_apps_share_events_through_redis(
        aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path,
        redis_url: str, redis_prefix: str) -> None:
    apps = []
    for name in ("a", "b"):
        config = make_config(tmp_path / name, **{"bus.backend": "redis", "bus.redis_url": redis_url,
                                                 "bus.channel_prefix": redis_prefix})
        apps.append((await aiohttp_client(create_app(config))).app[SERVICES])
    node_a, node_b = apps
    assert node_a.bus.node_id != node_b.bus.node_id
    sub = await node_b.bus.subscribe("meeting.7")
    await node_a.bus.publish("meeting.7", {"type": "floor.granted", "point": "P-01"})
    envelope = await next_envelope(sub)
    assert envelope.origin == node_a.bus.node_id
    assert envelope.event == {"type": "floor.granted", "point": "P-01"}
