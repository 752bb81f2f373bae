"""Two real server nodes on one private Redis: each sees the other's presence and chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from meetings.models import MeetingState
from server.app import create_app
from server.keys import SERVICES
from server.ws import HUB
from tests.conftest import Api, make_config
from tests.server.test_ws_kit import WsPeer, build_scene

ClientFactory = Callable[..., Awaitable[TestClient]]
pytestmark = pytest.mark.redis


async def test_two_nodes_over_redis(aiohttp_client: ClientFactory, tmp_path: Path, redis_url: str,
                                    redis_prefix: str) -> None:
    config = make_config(tmp_path, **{"bus.backend": "redis", "bus.redis_url": redis_url,
                                      "bus.channel_prefix": redis_prefix})
    node_a = await aiohttp_client(create_app(config))
    node_b = await aiohttp_client(create_app(config))
    assert node_a.app[HUB].node_id != node_b.app[HUB].node_id  # two independent nodes
    scene = await build_scene(Api(node_a, node_a.app[SERVICES]))

    chair = await WsPeer.connect(node_a, "chair@A")
    await chair.hello(scene.chair)
    await chair.join(scene.meeting_id)
    d1 = await WsPeer.connect(node_b, "d1@B")
    await d1.hello(scene.d1_device)
    joined = await d1.join(scene.meeting_id)
    assert sorted(p["kind"] for p in joined["presence"]) == ["point", "user"]  # sees the chair on A

    seen = await chair.expect("presence", event="joined")
    assert seen["participant"]["point"]["code"] == "D1"

    await d1.send("chat", text="Điểm cầu Lạc Sơn đã sẵn sàng")
    assert (await chair.expect("chat"))["text"] == "Điểm cầu Lạc Sơn đã sẵn sàng"
    await chair.send("chat", text="Cảm ơn đồng chí")
    assert (await d1.expect("chat", text="Cảm ơn đồng chí"))["from"]["label"] == "Chủ tọa Nguyễn Văn An"

    # A domain event published on node A (the meeting opens) reaches the session on node B.
    await node_a.app[SERVICES].calendar.set_state(scene.meeting_id, MeetingState.OPEN)
    event = await d1.expect("event")
    assert event["event"]["type"] == "meeting.state" and event["event"]["state"] == "open"

    await d1.close()
    left = await chair.expect("presence", event="left")
    assert left["participant"]["point"]["code"] == "D1"
    await chair.close()
