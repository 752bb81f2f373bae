"""Two server nodes sharing one bus and one presence store (what Redis gives a cluster).

Both apps run for real on their own loopback ports and share the database file; the bus is
one :class:`MemoryBus` and the presence store one :class:`MemoryPresence`, injected through
the same factories the Redis backends plug into (``make_bus`` and ``make_presence``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

import server.services
import server.ws
from meetings.bus import MemoryBus
from meetings.presence import MemoryPresence
from server.app import create_app
from server.keys import SERVICES
from server.ws import HUB
from tests.conftest import Api, make_config
from tests.server.test_ws_kit import WsPeer, build_scene

ClientFactory = Callable[..., Awaitable[TestClient]]


async def test_two_nodes_see_each_others_presence_and_chat(
    aiohttp_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus, presence = MemoryBus(), MemoryPresence()
    monkeypatch.setattr(server.services, "make_bus", lambda config: bus)
    monkeypatch.setattr(server.ws, "make_presence", lambda services: presence)
    config = make_config(tmp_path)
    node_a = await aiohttp_client(create_app(config))
    node_b = await aiohttp_client(create_app(config))
    assert node_a.port != node_b.port
    scene = await build_scene(Api(node_a, node_a.app[SERVICES]))

    chair = await WsPeer.connect(node_a, "chair@A")
    await chair.hello(scene.chair)
    await chair.join(scene.meeting_id)
    d1 = await WsPeer.connect(node_b, "d1@B")
    await d1.hello(scene.d1_device)
    joined = await d1.join(scene.meeting_id)
    assert [p["kind"] for p in joined["presence"]] == ["user", "point"]  # the chair is on node A

    seen = await chair.expect("presence", event="joined")
    assert seen["participant"]["point"]["code"] == "D1"
    await chair.silent(0.2)  # exactly once, not once per node

    await d1.send("chat", text="Điểm cầu Lạc Sơn đã sẵn sàng", id="b1")
    at_a = await chair.expect("chat")
    at_b = await d1.expect("chat")
    assert at_a["text"] == at_b["text"] == "Điểm cầu Lạc Sơn đã sẵn sàng"
    assert at_b["re"] == "b1" and "re" not in at_a and at_a["id"] == at_b["id"]
    await chair.send("chat", text="Cảm ơn đồng chí")
    assert (await d1.expect("chat"))["from"]["label"] == "Chủ tọa Nguyễn Văn An"
    await chair.expect("chat")
    await d1.silent(0.2)

    # A third participant on node B sees both, however they are spread.
    d2 = await WsPeer.connect(node_b, "d2@B")
    await d2.hello(scene.d2_device)
    snapshot = await d2.join(scene.meeting_id)
    assert len(snapshot["presence"]) == 3 and [m["text"] for m in snapshot["chat"]] == [
        "Điểm cầu Lạc Sơn đã sẵn sàng",
        "Cảm ơn đồng chí",
    ]

    assert (await chair.expect("presence", event="joined"))["participant"]["point"]["code"] == "D2"
    await d1.close()
    for peer in (chair, d2):
        left = await peer.expect("presence", event="left")
        assert left["participant"]["point"]["code"] == "D1"
    assert len(await presence.list(scene.meeting_id)) == 2
    assert node_a.app[HUB].node_id == node_b.app[HUB].node_id == bus.node_id

    # Node B stops: its sockets close with 1001 and node A's participants see them leave.
    await node_b.server.close()
    assert await d2.closed() == 1001
    left = await chair.expect("presence", event="left")
    assert left["participant"]["point"]["code"] == "D2" and left["reason"] == "shutdown"
