"""/ws over a real loopback server: authentication, presence, chat, ping, leave, metrics."""

from __future__ import annotations

from datetime import datetime

import pytest
from prometheus_client import generate_latest

from meetings.chat import MeetingChat
from meetings.models import MeetingState
from meetings.presence import PresenceLog
from server.keys import METRICS
from server.ws import HUB
from tests.conftest import Api
from tests.server.test_ws_kit import Scene, WsPeer, build_scene, until


@pytest.fixture
async def scene(api: Api) -> Scene:
    return await build_scene(api)


async def test_hello_with_a_session_token(scene: Scene) -> None:
    peer = await WsPeer.connect(scene.api.client)
    await peer.send("hello", v=1, token=scene.chair, id="h1")
    welcome = await peer.recv()
    assert welcome["type"] == "welcome" and welcome["re"] == "h1" and welcome["v"] == 1
    assert welcome["principal"]["kind"] == "user"
    assert welcome["principal"]["user"] == {
        "username": "chutoa",
        "display_name": "Chủ tọa Nguyễn Văn An",
        "role": "chair",
    }
    assert welcome["principal"]["label"] == "Chủ tọa Nguyễn Văn An"
    assert welcome["heartbeat_s"] == 15 and welcome["resume_window_s"] == 30
    assert welcome["limits"]["chat_max_chars"] == 2000
    assert len(welcome["session"]) >= 16 and len(welcome["resume_token"]) >= 32
    assert "resume_error" not in welcome


async def test_hello_with_a_device_token(scene: Scene) -> None:
    peer = await scene.peer(scene.d1_device)
    principal = peer.welcome["principal"]
    assert (
        principal["kind"] == "point"
        and principal["user"] is None
        and principal["meeting_id"] is None
    )
    assert principal["point"] == {"code": "D1", "name": "Huyện Lạc Sơn", "level": "district"}
    joined = await peer.join(scene.meeting_id)
    assert joined["meeting"] == {
        "id": scene.meeting_id,
        "title": "Hội nghị giao ban tháng 3",
        "state": "scheduled",
    }


async def test_hello_with_an_invitation_link(scene: Scene) -> None:
    peer = await scene.peer(scene.d1_link)
    assert peer.welcome["principal"]["meeting_id"] == scene.meeting_id
    assert peer.welcome["principal"]["point"]["code"] == "D1"
    await peer.join(scene.meeting_id)


async def test_hello_with_the_session_cookie(scene: Scene) -> None:
    # The login of build_scene left the signed session cookie in the client's jar.
    await scene.api.login("daibieu")
    peer = await WsPeer.connect(scene.api.client)
    welcome = await peer.hello()
    assert welcome["principal"]["user"]["username"] == "daibieu"
    assert welcome["principal"]["point"]["code"] == "D1"
    await peer.join(scene.meeting_id)


async def test_cookie_from_another_origin_is_refused(scene: Scene) -> None:
    await scene.api.login("daibieu")
    peer = await WsPeer.connect(scene.api.client, origin="https://evil.example")
    await peer.send("hello", v=1)
    await peer.error("forbidden")
    # A bearer token is not ambient authority: any origin may use it.
    welcome = await peer.hello(scene.delegate)
    assert welcome["type"] == "welcome"


async def test_presence_is_seen_by_others_with_since(scene: Scene) -> None:
    chair, joined = await scene.joined_peer(scene.chair, "chair")
    assert [p["key"] for p in joined["presence"]] == [joined["you"]["key"]]
    me = joined["presence"][0]
    assert me["kind"] == "user" and me["user"]["role"] == "chair" and me["point"] is None
    datetime.fromisoformat(me["since"])
    assert me["since"].endswith("Z")

    d1, joined_d1 = await scene.joined_peer(scene.d1_device, "d1")
    assert {p["key"] for p in joined_d1["presence"]} == {me["key"], joined_d1["you"]["key"]}
    event = await chair.expect("presence")
    assert event["event"] == "joined" and event["meeting_id"] == scene.meeting_id
    participant = event["participant"]
    assert participant["key"] == joined_d1["you"]["key"]
    assert participant["kind"] == "point" and participant["label"] == "Huyện Lạc Sơn"
    assert participant["point"] == {"code": "D1", "name": "Huyện Lạc Sơn", "level": "district"}
    assert participant["since"] >= me["since"]
    assert isinstance(event["seq"], int)
    await d1.silent()  # no presence event about itself

    await d1.send("leave", id=7)
    left = await d1.recv()
    assert left == {"type": "left", "meeting_id": scene.meeting_id, "reason": "left", "re": 7}
    gone = await chair.expect("presence")
    assert gone["event"] == "left" and gone["participant"]["key"] == participant["key"]
    assert gone["reason"] == "left"

    history = await PresenceLog(scene.services.db).history(scene.meeting_id)
    assert [(r.label, r.left_at is None) for r in history] == [
        ("Chủ tọa Nguyễn Văn An", True),
        ("Huyện Lạc Sơn", False),
    ]


async def test_a_clean_close_is_an_immediate_leave(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d2, _ = await scene.joined_peer(scene.d2_device, "d2")
    await chair.expect("presence", event="joined")
    await d2.close()  # code 1000
    gone = await chair.expect("presence", event="left")
    assert gone["participant"]["point"]["code"] == "D2" and gone["reason"] == "left"


async def test_chat_fans_out_and_is_kept(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    delegate, _ = await scene.joined_peer(scene.delegate, "delegate")
    await d1.send("chat", text="  Xin chào\r\nđồng chí chủ tọa \x07", id="c1")
    for peer in (chair, d1, delegate):
        msg = await peer.expect("chat")
        assert msg["text"] == "Xin chào\nđồng chí chủ tọa"
        assert msg["from"] == {"kind": "point", "label": "Huyện Lạc Sơn", "point_code": "D1"}
        assert msg["meeting_id"] == scene.meeting_id and msg["at"].endswith("Z")
        assert ("re" in msg) == (peer is d1)
    await delegate.send("chat", text="Đã rõ")
    msg = await chair.expect("chat")
    assert msg["from"] == {"kind": "user", "label": "Đại biểu Lò Thị Bình", "point_code": "D1"}

    _late, joined = await scene.joined_peer(scene.d2_device, "late")
    assert [m["text"] for m in joined["chat"]] == ["Xin chào\nđồng chí chủ tọa", "Đã rõ"]
    texts = [m.text for m in await MeetingChat(scene.services.db).recent(scene.meeting_id, 10)]
    assert texts == ["Xin chào\nđồng chí chủ tọa", "Đã rõ"]


async def test_chat_history_is_bounded_by_config(aiohttp_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from server.app import create_app
    from server.keys import SERVICES
    from tests.conftest import make_config

    client = await aiohttp_client(
        create_app(make_config(tmp_path, **{"signalling.chat_history": 3}))
    )
    scene = await build_scene(Api(client, client.app[SERVICES]))
    chair, _ = await scene.joined_peer(scene.chair)
    for i in range(5):
        await chair.send("chat", text=f"tin {i}")
        await chair.expect("chat")
    _, joined = await scene.joined_peer(scene.d1_device)
    assert [m["text"] for m in joined["chat"]] == ["tin 2", "tin 3", "tin 4"]


async def test_ping_pong(scene: Scene) -> None:
    peer = await scene.peer(scene.chair)
    await peer.send("ping", t=1234.5, id=1)
    assert await peer.recv() == {"type": "pong", "t": 1234.5, "re": 1}
    await peer.send("ping")
    assert await peer.recv() == {"type": "pong", "t": None}


async def test_join_twice_gives_a_fresh_snapshot_without_broadcast(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, first = await scene.joined_peer(scene.d1_device, "d1")
    await chair.expect("presence", event="joined")
    again = await d1.join(scene.meeting_id)
    assert again["you"] == first["you"] and len(again["presence"]) == 2
    await chair.silent()


async def test_observers_may_join_but_not_chat(scene: Scene) -> None:
    peer, _ = await scene.joined_peer(scene.observer)
    await peer.send("chat", text="xin phát biểu", id="x")
    err = await peer.error("forbidden")
    assert err["re"] == "x"


async def test_a_closed_meeting_ends_the_room_and_cannot_be_joined(scene: Scene) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    await scene.services.calendar.set_state(scene.meeting_id, MeetingState.OPEN)
    for peer in (chair, d1):
        event = await peer.expect("event")
        assert event["topic"] == f"meeting.{scene.meeting_id}" and event["event"]["state"] == "open"
    await scene.services.calendar.set_state(scene.meeting_id, MeetingState.CLOSED)
    for peer in (chair, d1):
        closed = await peer.expect("event")
        assert closed["event"]["type"] == "meeting.state" and closed["event"]["state"] == "closed"
        assert await peer.expect("left") == {
            "type": "left",
            "meeting_id": scene.meeting_id,
            "reason": "meeting_closed",
        }
    await d1.send("join", meeting_id=scene.meeting_id)
    await d1.error("meeting_closed")
    hub = scene.api.client.app[HUB]
    assert not hub.rooms.active and not await hub.rooms.presence.list(scene.meeting_id)


async def test_domain_events_are_relayed(scene: Scene) -> None:
    from meetings.calendar import InviteSelection

    chair, _ = await scene.joined_peer(scene.chair)
    await scene.services.calendar.invite(scene.meeting_id, InviteSelection(codes=("D3",)))
    event = await chair.expect("event")
    assert event["event"] == {
        "type": "invitations.changed",
        "meeting_id": scene.meeting_id,
        "invited": ["D3"],
    }


async def test_metrics_count_connections_messages_and_participants(scene: Scene) -> None:
    registry = scene.api.client.app[METRICS].registry
    chair, _ = await scene.joined_peer(scene.chair)
    d1, _ = await scene.joined_peer(scene.d1_device)
    await d1.ws.send_str("nonsense")
    await d1.error("malformed_json")
    text = generate_latest(registry).decode()
    assert "diemcau_ws_connections 2.0" in text
    assert f'diemcau_meeting_participants{{meeting="{scene.meeting_id}"}} 2.0' in text
    assert 'diemcau_ws_messages_total{result="ok",type="join"} 2.0' in text
    assert 'diemcau_ws_messages_total{result="malformed_json",type="invalid"} 1.0' in text
    await d1.close()
    await chair.close()
    hub = scene.api.client.app[HUB]
    await until(lambda: not hub.connections and not hub.sessions)
    resp = await scene.api.client.get("/metrics")
    text = await resp.text()
    assert "diemcau_ws_connections 0.0" in text
    assert "diemcau_meeting_participants{" not in text


async def test_cookie_from_the_public_url_origin_is_accepted(aiohttp_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Behind a TLS proxy the browser's Origin is ``server.public_url``, not what aiohttp sees."""
    from server.app import create_app
    from server.keys import SERVICES
    from tests.conftest import make_config

    config = make_config(tmp_path, **{"server.public_url": "https://hop.hoabinh.gov.vn/"})
    client = await aiohttp_client(create_app(config))
    scene = await build_scene(Api(client, client.app[SERVICES]))
    await scene.api.login("daibieu")
    peer = await WsPeer.connect(client, origin="https://hop.hoabinh.gov.vn")
    assert (await peer.hello())["principal"]["user"]["username"] == "daibieu"
    evil = await WsPeer.connect(client, origin="https://hop.hoabinh.gov.vn.evil.example")
    await evil.send("hello", v=1)
    await evil.error("forbidden")
