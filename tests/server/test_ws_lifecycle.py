"""Lifecycle: nothing leaks over many sessions, and shutdown closes everything in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from meetings.presence import PresenceLog
from meetings.store.db import Database
from server.app import create_app
from server.keys import METRICS, SERVICES
from server.ws import HUB
from tests.conftest import Api, make_config
from tests.server.test_ws_kit import WsPeer, build_scene, until

ClientFactory = Callable[..., Awaitable[TestClient]]


async def test_many_sessions_leave_no_tasks_or_state_behind(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path, **{"signalling.resume_window_s": 0.2})
    client = await aiohttp_client(create_app(config))
    scene = await build_scene(Api(client, client.app[SERVICES]))
    hub = client.app[HUB]
    bus = scene.services.bus
    witness, _ = await scene.joined_peer(scene.chair, "witness")

    async def quiet() -> None:
        await until(
            lambda: len(hub.connections) == 1 and len(hub.sessions) == 1 and not hub._tasks,
            timeout=10,
        )

    await quiet()
    await asyncio.sleep(0.1)
    baseline = len(asyncio.all_tasks())
    for cycle in range(12):
        peer, _ = await scene.joined_peer(scene.d1_device, f"cycle {cycle}")
        await peer.send("chat", text=f"lượt {cycle}")
        await peer.expect("chat")
        match cycle % 6:
            case 0:  # clean close
                await peer.close()
            case 1:  # leave, then close
                await peer.send("leave")
                await peer.expect("left")
                await peer.close()
            case 2:  # dropped, left to expire
                peer.drop()
            case 3:  # dropped, resumed, then closed
                peer.drop()
                await until(lambda: len(hub.connections) == 1)
                again, resumed = await peer.resume(client)
                assert resumed["type"] == "resumed"
                await again.close()
            case 4:  # closed by the server for an oversized frame
                await peer.send("chat", text="x" * (config.signalling.max_message_bytes * 2 + 1))
                await peer.closed()
            case 5:  # never authenticated
                stranger = await WsPeer.connect(client)
                await stranger.send("ping")
                await stranger.error("not_authenticated")
                await stranger.close()
                await peer.close()
        await quiet()
    await asyncio.sleep(0.1)
    assert len(asyncio.all_tasks()) <= baseline
    assert (
        list(hub.rooms.active) == [scene.meeting_id]
        and len(hub.rooms.active[scene.meeting_id].sessions) == 1
    )
    assert len(await hub.rooms.presence.list(scene.meeting_id)) == 1
    assert len(bus._subs[f"meeting.{scene.meeting_id}"]) == 1  # type: ignore[attr-defined]
    await witness.close()
    await until(lambda: not (hub.sessions or hub.rooms.active or hub.connections), timeout=5)
    # only the hub's own node-wide subscription (credential withdrawals) is left
    subs = bus._subs  # type: ignore[attr-defined]
    assert {t: len(s) for t, s in subs.items()} == {"credentials": 1}
    gauge = client.app[METRICS].ws_connections._value.get()  # type: ignore[attr-defined]
    assert gauge == 0
    history = await PresenceLog(scene.services.db).history(scene.meeting_id)
    assert len(history) == 13 and all(r.left_at is not None for r in history)


async def test_shutdown_closes_sockets_with_going_away(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    client = await aiohttp_client(create_app(config))
    scene = await build_scene(Api(client, client.app[SERVICES]))
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    d2 = await scene.peer(scene.d2_device, "d2")  # authenticated, not in a meeting
    hub = client.app[HUB]
    d2.drop()  # a detached session is ended at shutdown too
    await until(lambda: len(hub.connections) == 2)

    await client.server.close()  # stop the server, not the client's sockets
    for peer in (chair, d1):
        assert await peer.closed() == 1001
    assert hub.closing and not hub.sessions and not hub.connections and not hub.rooms.active
    db = Database(config.database_url)
    try:
        history = await PresenceLog(db).history(scene.meeting_id)
    finally:
        await db.close()
    assert len(history) == 2 and all(r.left_at is not None for r in history)
