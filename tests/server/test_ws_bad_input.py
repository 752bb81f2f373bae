"""Bad input on /ws: each case is refused with its error code, and the meeting goes on.

Every test keeps a chair and a district in the meeting and checks, after the bad input, that
they still hear each other: one bad client never harms the others.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.store.tables import invitations, sessions
from server.app import create_app
from server.auth import COOKIE, sign_cookie
from server.keys import SERVICES
from server.ws import HUB
from tests.conftest import Api, make_config
from tests.server.test_ws_kit import Scene, WsPeer, build_scene, until

ClientFactory = Callable[..., Awaitable[TestClient]]
_counter = itertools.count()


@dataclass
class Room:
    scene: Scene
    chair: WsPeer
    d2: WsPeer

    async def still_works(self) -> None:
        text = f"vẫn họp bình thường {next(_counter)}"
        await self.d2.send("chat", text=text)
        assert (await self.chair.expect("chat", text=text))["from"]["point_code"] == "D2"
        await self.d2.expect("chat", text=text)

    async def newcomer(self, token: str | None = None, name: str = "bad") -> WsPeer:
        peer = await WsPeer.connect(self.scene.api.client, name)
        if token is not None:
            await peer.hello(token)
        return peer


async def open_room(scene: Scene) -> Room:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d2, _ = await scene.joined_peer(scene.d2_device, "d2")
    await chair.expect("presence", event="joined")
    return Room(scene, chair, d2)


@pytest.fixture
async def room(api: Api) -> Room:
    return await open_room(await build_scene(api))


async def room_with(aiohttp_client: ClientFactory, tmp_path: Path, **overrides: Any) -> Room:
    client = await aiohttp_client(create_app(make_config(tmp_path, **overrides)))
    return await open_room(await build_scene(Api(client, client.app[SERVICES])))


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        "",
        "null",
        "[1, 2]",
        '"hello"',
        "42",
        '{"type": "ping", "t": NaN}',
        "[" * 30000,
        "1" * 5000,
        b"\xff\xfe\x00",
        '{"type": "ping"} trailing',
    ],
)
async def test_malformed_json(room: Room, frame: str | bytes) -> None:
    peer = await room.newcomer(room.scene.d1_device)
    await (peer.ws.send_bytes(frame) if isinstance(frame, bytes) else peer.ws.send_str(frame))
    err = await peer.error("malformed_json")
    assert "re" not in err
    await room.still_works()
    await peer.send("ping", id="after")
    assert (await peer.recv())["type"] == "pong"


async def test_unknown_type(room: Room) -> None:
    peer = await room.newcomer(room.scene.d1_device)
    await peer.send("fly", id="u1")
    err = await peer.error("unknown_type")
    assert err["re"] == "u1" and "join" in err["details"]["known"]
    await peer.send("Join", meeting_id=room.scene.meeting_id)
    await peer.error("unknown_type")
    await room.still_works()


@pytest.mark.parametrize(
    "message, field",
    [
        ({"id": 3}, "type"),
        ({"type": "join", "id": 3}, "meeting_id"),
        ({"type": "join", "meeting_id": None, "id": 3}, "meeting_id"),
        ({"type": "chat", "id": 3}, "text"),
        ({"type": "hello", "id": 3}, "v"),
    ],
)
async def test_missing_fields(room: Room, message: dict[str, Any], field: str) -> None:
    peer = await room.newcomer(room.scene.d1_device)
    await peer.ws.send_str(json.dumps(message))
    err = await peer.error("missing_field")
    assert err["re"] == 3 and err["details"] == {"field": field}
    await room.still_works()


@pytest.mark.parametrize(
    "message, field",
    [
        ({"type": "join", "meeting_id": "1"}, "meeting_id"),
        ({"type": "join", "meeting_id": True}, "meeting_id"),
        ({"type": "join", "meeting_id": 1.5}, "meeting_id"),
        ({"type": "join", "meeting_id": -4}, "meeting_id"),
        ({"type": "join", "meeting_id": 2**60}, "meeting_id"),
        ({"type": "chat", "text": 5}, "text"),
        ({"type": "chat", "text": ["a"]}, "text"),
        ({"type": "chat", "text": "\ud800"}, "text"),
        ({"type": "ping", "t": [1]}, "t"),
        ('{"type": "ping", "t": 1e999}', "t"),  # a literal that overflows to infinity
        ({"type": "ping", "id": {"a": 1}}, "id"),
        ({"type": "ping", "id": "x" * 65}, "id"),
        ({"type": 7}, "type"),
        ({"type": "hello", "v": "1"}, "v"),
        ({"type": "hello", "v": 1, "token": 12}, "token"),
        ({"type": "hello", "v": 1, "resume": "r", "last_seq": -1}, "last_seq"),
    ],
)
async def test_wrong_field_types(room: Room, message: dict[str, Any] | str, field: str) -> None:
    peer = await room.newcomer(room.scene.d1_device)
    await peer.ws.send_str(message if isinstance(message, str) else json.dumps(message))
    err = await peer.error("invalid_field")
    assert err["details"] == {"field": field}
    await room.still_works()


async def test_oversized_frames(room: Room) -> None:
    limit = room.scene.services.config.signalling.max_message_bytes
    peer = await room.newcomer(room.scene.d1_device)
    await peer.join(room.scene.meeting_id)
    await room.chair.expect("presence", event="joined")
    # Above the limit: refused, the connection stays.
    await peer.send("chat", text="á" * (limit // 2 + 10))  # < limit characters, > limit bytes
    err = await peer.error("too_large")
    assert err["details"] == {"max_message_bytes": limit}
    await peer.send("ping", id=1)
    assert (await peer.recv())["type"] == "pong"
    # Far above it: aiohttp closes the socket (1009); the session detaches like any drop.
    await peer.send("chat", text="x" * (limit * 2 + 1))
    assert await peer.closed() == 1009
    await room.chair.silent(0.2)  # inside the resume window: no "left"
    await room.still_works()
    hub = room.scene.api.client.app[HUB]
    await until(lambda: len(hub.connections) == 2)


async def test_messages_before_hello(room: Room) -> None:
    peer = await room.newcomer()
    await peer.send("join", meeting_id=room.scene.meeting_id, id="j")
    assert (await peer.error("not_authenticated"))["re"] == "j"
    await peer.send("ping")
    await peer.error("not_authenticated")
    await room.still_works()
    # A third strike closes with policy violation.
    await peer.send("chat", text="xin chào")
    await peer.error("not_authenticated")
    assert await peer.closed() == 1008
    # Two strikes, then a good hello: the connection is usable.
    late = await room.newcomer()
    await late.send("leave")
    await late.error("not_authenticated")
    await late.hello(room.scene.d1_device)
    await late.join(room.scene.meeting_id)
    await room.still_works()


async def test_hello_without_credentials_and_twice(room: Room) -> None:
    room.scene.api.client.session.cookie_jar.clear()
    peer = await room.newcomer()
    await peer.send("hello", v=1)
    await peer.error("not_authenticated")
    await peer.send("hello", v=2, token=room.scene.d1_device)
    err = await peer.error("bad_version")
    assert err["details"] == {"supported": [1]}
    await peer.hello(room.scene.d1_device)
    await peer.send("hello", v=1, token=room.scene.d1_device)
    await peer.error("already_authenticated")
    await room.still_works()


async def test_join_of_a_meeting_not_invited_to(room: Room) -> None:
    scene = room.scene
    other = await scene.services.calendar.create(
        MeetingDraft("Họp riêng của huyện Đà Bắc", utcnow() + timedelta(days=1)), created_by=None
    )
    links = await scene.services.calendar.invite(other.id, InviteSelection(codes=("D3",)))
    cases = [
        (scene.d3_device, scene.meeting_id, "forbidden"),  # a point that was not invited
        (scene.outsider, scene.meeting_id, "forbidden"),  # a user of such a point
        (scene.d1_link, other.id, "forbidden"),  # an invitation link opens its own meeting only
        (scene.d1_device, other.id, "forbidden"),
        (links.links["D3"], scene.meeting_id, "forbidden"),
        (scene.d1_device, 999_999, "not_found"),
    ]
    for token, meeting_id, code in cases:
        peer = await room.newcomer(token)
        await peer.send("join", meeting_id=meeting_id, id="j")
        err = await peer.error(code)
        assert err["re"] == "j"
        await peer.send("chat", text="lọt vào không?")
        await peer.error("not_joined")
        await peer.send("leave")
        await peer.error("not_joined")
        await room.chair.silent(0.05)
    await room.still_works()


async def test_forged_and_expired_tokens(room: Room) -> None:
    scene = room.scene
    services = scene.services
    expired_login = await scene.api.login("daibieu")
    async with services.db.transaction() as conn:
        await conn.execute(
            sessions.update()
            .where(
                sessions.c.id
                == (await services.accounts.resolve_session(expired_login["token"]))[1]
            )
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        await conn.execute(invitations.update().values(expires_at=utcnow() - timedelta(minutes=1)))
    revoked = await services.registry.issue_token((await services.registry.by_code("D2")).id)
    await services.registry.revoke_tokens((await services.registry.by_code("D3")).id)
    cases = [
        ("dcs_" + "A" * 43, "invalid_token"),
        ("dcp_forged", "invalid_token"),
        ("dci_forged", "invalid_token"),
        ("Bearer whatever", "invalid_token"),
        ("", "invalid_token"),
        (scene.d3_device, "invalid_token"),  # revoked
        (expired_login["token"], "token_expired"),
        (scene.d1_link, "token_expired"),
    ]
    for token, code in cases:
        peer = await room.newcomer()
        await peer.send("hello", v=1, token=token, id="h")
        err = await peer.error(code)
        assert err["re"] == "h"
    assert revoked.token  # other tokens of the same registry keep working
    await room.newcomer(revoked.token)
    # A forged cookie.
    scene.api.client.session.cookie_jar.clear()
    peer = await WsPeer.connect(scene.api.client, headers={"Cookie": f"{COOKIE}=dcs_x.forged"})
    await peer.send("hello", v=1)
    await peer.error("invalid_token")
    secret = services.secret
    peer = await WsPeer.connect(
        scene.api.client,
        headers={"Cookie": f"{COOKIE}={sign_cookie(secret, expired_login['token'])}"},
    )
    await peer.send("hello", v=1)
    await peer.error("token_expired")
    await room.still_works()


async def test_rate_limit(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    room = await room_with(aiohttp_client, tmp_path, **{"signalling.messages_per_second": 2})
    peer = await room.newcomer(room.scene.d1_device)
    for i in range(12):
        await peer.send("ping", id=i)
    replies = [await peer.recv() for _ in range(12)]
    limited = [r for r in replies if r["type"] == "error"]
    assert limited and all(r["code"] == "rate_limited" for r in limited)
    assert {r["re"] for r in limited} <= set(range(12))
    assert sum(r["type"] == "pong" for r in replies) >= 4  # the burst allowance
    await room.still_works()
    await asyncio.sleep(1.0)
    await peer.send("ping", id="later")
    assert (await peer.recv())["type"] == "pong"


async def test_a_flood_is_disconnected(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    room = await room_with(aiohttp_client, tmp_path, **{"signalling.messages_per_second": 1})
    peer = await room.newcomer(room.scene.d1_device)
    for _ in range(150):
        await peer.ws.send_str('{"type":"ping"}')
    codes = []
    while True:
        msg = await peer.ws.receive(timeout=5)
        if msg.type is not WSMsgType.TEXT:
            break
        codes.append(json.loads(msg.data).get("code"))
    assert msg.type is WSMsgType.CLOSE and msg.data == 1008 and "rate_limited" in codes
    await room.still_works()


async def test_text_too_long_or_empty(room: Room) -> None:
    peer = await room.newcomer(room.scene.d1_device)
    await peer.join(room.scene.meeting_id)
    limit = room.scene.services.config.signalling.chat_max_chars
    await peer.send("chat", text="a" * (limit + 1), id=1)
    err = await peer.error("text_too_long")
    assert err["details"] == {"max_chars": limit}
    await peer.send("chat", text=" \x00\x07 \n", id=2)
    await peer.error("text_empty")
    await peer.send("chat", text="a" * limit, id=3)
    assert (await peer.expect("chat"))["re"] == 3
    await room.still_works()


async def test_a_slow_reader_is_closed_and_blocks_no_one(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.ws import handler

    monkeypatch.setattr(handler, "QUEUE_SIZE", 16)
    scene = room.scene
    slow = await room.newcomer(scene.d1_device, "slow")
    await slow.join(scene.meeting_id)
    await room.chair.expect("presence", event="joined")
    big = "x" * 60_000
    received = 0

    async def read_all() -> None:
        nonlocal received
        while received < 300:
            data = await room.d2.recv(timeout=20)
            received += data.get("type") == "event"

    reader = asyncio.create_task(read_all())
    for i in range(300):  # ~18 MB: more than the loopback socket buffers hold
        await scene.services.bus.publish(
            f"meeting.{scene.meeting_id}", {"type": "test.big", "i": i, "pad": big}
        )
        await asyncio.sleep(0)
    await asyncio.wait_for(reader, 30)
    assert received == 300
    # The slow reader was closed with 4001 (a queue of 16 frames cannot absorb the burst).
    assert await slow.closed(timeout=10) == 4001
    await room.still_works()


async def test_a_silent_connection_is_dropped(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    room = await room_with(aiohttp_client, tmp_path, **{"signalling.heartbeat_s": 1})
    silent = await room.newcomer(room.scene.d1_device, "silent")
    talker = await room.newcomer(room.scene.d1_device, "talker")
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def keep_talking() -> None:
        while True:
            for peer in (talker, room.chair, room.d2):  # application pings keep these alive
                await peer.send("ping")
            await asyncio.sleep(0.5)

    task = asyncio.create_task(keep_talking())
    try:
        assert await silent.closed(timeout=6) == 4002
        assert 2.9 < loop.time() - start < 5.5
        await talker.expect("pong")
        await room.still_works()
    finally:
        task.cancel()
