"""Resume: a short drop is invisible to others and loses no event; a long one is a leave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meetings.calendar import topic
from server.app import create_app
from server.keys import SERVICES
from server.ws import HUB
from server.ws.session import REPLAY_BUFFER
from tests.conftest import Api, make_config
from tests.server.test_ws_kit import Scene, build_scene, until

ClientFactory = Callable[..., Awaitable[TestClient]]


async def scene_with(aiohttp_client: ClientFactory, tmp_path: Path, **overrides: Any) -> Scene:
    client = await aiohttp_client(create_app(make_config(tmp_path, **overrides)))
    return await build_scene(Api(client, client.app[SERVICES]))


@pytest.fixture
async def scene(aiohttp_client: ClientFactory, tmp_path: Path) -> Scene:
    return await scene_with(aiohttp_client, tmp_path)


async def test_resume_within_the_window_is_silent_and_replays_missed_events(scene: Scene) -> None:
    client = scene.api.client
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, joined = await scene.joined_peer(scene.d1_device, "d1")
    await chair.expect("presence", event="joined")
    await chair.send("chat", text="trước khi mất mạng")
    await d1.expect("chat")
    hub = client.app[HUB]
    key = joined["you"]["key"]

    d1.drop()
    await until(lambda: hub.sessions[key].connection is None)
    await chair.send("chat", text="trong lúc mất mạng 1")
    await chair.send("chat", text="trong lúc mất mạng 2")
    await chair.expect("chat", text="trong lúc mất mạng 2")

    d1b, resumed = await d1.resume(client)
    assert resumed["type"] == "resumed" and resumed["session"] == key
    assert resumed["replayed"] == 2 and resumed["gap"] is False
    assert resumed["meeting"]["id"] == scene.meeting_id
    assert resumed["resume_token"] != d1.welcome["resume_token"]
    first, second = await d1b.recv(), await d1b.recv()
    assert [first["text"], second["text"]] == ["trong lúc mất mạng 1", "trong lúc mất mạng 2"]
    assert second["seq"] == first["seq"] + 1 == d1.last_seq + 2
    await chair.silent(0.3)  # neither "left" nor a second "joined"

    # Live again, numbering continues; the old resume token is spent.
    await chair.send("chat", text="đã nối lại")
    again = await d1b.expect("chat")
    assert again["seq"] == second["seq"] + 1
    await d1b.send("chat", text="nghe rõ", id="r1")
    assert (await d1b.expect("chat"))["re"] == "r1"
    _stale, reply = await d1.resume(client, "stale", token=scene.d1_device)
    assert reply["type"] == "welcome" and reply["resume_error"] == "resume_expired"
    assert reply["session"] != key


async def test_resume_without_last_seq_replays_what_was_not_written(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    hub = scene.api.client.app[HUB]
    d1.drop()
    await until(
        lambda: (
            all(
                s.connection is not None or s.state.value == "detached"
                for s in hub.sessions.values()
            )
            and any(s.state.value == "detached" for s in hub.sessions.values())
        )
    )
    await chair.send("chat", text="một")
    await chair.expect("chat")
    d1b, resumed = await d1.resume(scene.api.client, last_seq=None)
    assert resumed["replayed"] == 1
    assert (await d1b.recv())["text"] == "một"


async def test_a_session_detached_too_long_leaves(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    scene = await scene_with(aiohttp_client, tmp_path, **{"signalling.resume_window_s": 0.5})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, joined = await scene.joined_peer(scene.d1_device, "d1")
    await chair.expect("presence", event="joined")
    d1.drop()
    await chair.silent(0.3)  # still inside the window
    left = await chair.expect("presence", timeout=3)
    assert left["event"] == "left" and left["reason"] == "timeout"
    assert left["participant"]["key"] == joined["you"]["key"]
    hub = scene.api.client.app[HUB]
    assert joined["you"]["key"] not in hub.sessions
    present = await hub.rooms.presence.list(scene.meeting_id)
    assert joined["you"]["key"] not in [e.key for e in present]

    # Too late: without credentials the resume is refused, with them it is a fresh session.
    scene.api.client.session.cookie_jar.clear()  # (logins left a session cookie)
    _late, reply = await d1.resume(scene.api.client, "late")
    assert reply["type"] == "error" and reply["code"] == "resume_expired"
    _late2, reply = await d1.resume(scene.api.client, "late2", token=scene.d1_device)
    assert reply["type"] == "welcome" and reply["resume_error"] == "resume_expired"


async def test_going_away_close_is_resumable(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """A page reload closes with 1001: the session waits for the new page to resume it."""
    scene = await scene_with(aiohttp_client, tmp_path, **{"signalling.resume_window_s": 0.5})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    await chair.expect("presence", event="joined")
    await d1.close(code=1001)
    _, resumed = await d1.resume(scene.api.client)
    assert resumed["type"] == "resumed"
    await chair.silent(0.8)  # past the window: resumed, so no "left"


async def test_resume_takes_over_a_connection_the_server_still_thinks_alive(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, joined = await scene.joined_peer(scene.d1_device, "d1")
    await chair.expect("presence", event="joined")
    d1b, resumed = await d1.resume(scene.api.client, "d1b")
    assert resumed["type"] == "resumed" and resumed["replayed"] == 0
    assert await d1.closed() == 4000
    await chair.send("chat", text="ai đang nghe?")
    assert (await d1b.expect("chat"))["text"] == "ai đang nghe?"
    await chair.expect("chat")
    await chair.silent(0.3)
    hub = scene.api.client.app[HUB]
    await until(lambda: len(hub.connections) == 2)
    assert hub.sessions[joined["you"]["key"]].connection is not None


async def test_a_long_gap_resumes_with_a_fresh_snapshot(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    await chair.expect("presence", event="joined")
    hub = scene.api.client.app[HUB]
    d1.drop()
    await until(lambda: any(s.state.value == "detached" for s in hub.sessions.values()))
    for i in range(REPLAY_BUFFER + 10):
        await scene.services.bus.publish(topic(scene.meeting_id), {"type": "test.tick", "i": i})
    await chair.send("chat", text="sau khi mất nhiều sự kiện")
    await chair.expect("chat")
    d1b, resumed = await d1.resume(scene.api.client)
    assert resumed["gap"] is True and resumed["replayed"] == 0
    snapshot = await d1b.recv()
    assert snapshot["type"] == "joined" and len(snapshot["presence"]) == 2
    assert snapshot["chat"][-1]["text"] == "sau khi mất nhiều sự kiện"
    await chair.send("chat", text="tiếp tục")
    assert (await d1b.expect("chat"))["text"] == "tiếp tục"
