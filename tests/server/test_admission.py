"""Admission control: caps per meeting and per node, precedence, audit and the chair's event.

The scene (tests/server/test_ws_kit.py): chair, delegate (user at D1), observer (user at D2),
device tokens of D1 and D2 (both invited) and D1's invitation link.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.models import Meeting, MeetingState, Principal, Role, User
from meetings.permissions import MeetingScope
from server.app import create_app
from server.config import load_config
from server.i18n import I18n
from server.keys import SERVICES
from server.ws import HUB
from server.ws.admission import MEETING_FULL, NODE_FULL, Refusal, decide, has_priority, reserve
from tests.conftest import Api, make_config
from tests.server.test_ws_kit import Scene, WsPeer, build_scene, until

ClientFactory = Callable[..., Awaitable[TestClient]]


async def scene_with(aiohttp_client: ClientFactory, tmp_path: Path, **overrides: Any) -> Scene:
    client = await aiohttp_client(create_app(make_config(tmp_path, **overrides)))
    return await build_scene(Api(client, client.app[SERVICES]))


async def refused(peer: WsPeer, meeting_id: int, code: str = MEETING_FULL) -> dict[str, Any]:
    """Send ``join``; the refusal must come back with ``code`` in under a second."""
    started = time.monotonic()
    await peer.send("join", meeting_id=meeting_id, id="j")
    reply = await peer.error(code, timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert reply["re"] == "j"
    return reply


async def still_chatting(speaker: WsPeer, listener: WsPeer, text: str) -> None:
    await speaker.send("chat", text=text)
    await listener.expect("chat", text=text)


def presence_count(scene: Scene) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        hub = scene.api.client.app[HUB]
        return len(await hub.rooms.presence.list(scene.meeting_id))
    return count


# ------------------------------------------------------------ the policy alone


def test_reserve_is_ten_percent_at_least_one_and_below_the_cap() -> None:
    assert reserve(250) == 25
    assert reserve(10) == 1
    assert reserve(3) == 1
    assert reserve(2) == 1
    assert reserve(1) == 0
    assert reserve(0) == 0


def test_decide() -> None:
    def d(count: int, cap: int, priority: bool, node: int = 0, node_cap: int = 0) -> Refusal | None:
        return decide(meeting_count=count, meeting_cap=cap, node_count=node, node_cap=node_cap,
                      priority=priority)

    assert d(0, 0, False, 10_000) is None  # 0 = no cap
    assert d(2, 3, True) is None and d(2, 3, False) == Refusal(MEETING_FULL, 3)
    assert d(1, 3, False) is None
    assert d(3, 3, True) == Refusal(MEETING_FULL, 3)
    assert d(224, 250, False) is None and d(225, 250, False) == Refusal(MEETING_FULL, 250)
    assert d(249, 250, True) is None
    assert d(0, 250, True, node=2000, node_cap=2000) == Refusal(NODE_FULL, 2000)
    assert d(0, 250, True, node=1999, node_cap=2000) is None
    assert d(0, 1, False) is None  # a cap of 1 keeps no reserve
    assert d(5, 3, True, node=5, node_cap=3) == Refusal(MEETING_FULL, 3)  # the meeting first


def test_precedence() -> None:
    now = datetime.now(UTC)

    def user(uid: int, role: Role) -> Principal:
        return Principal("user", user=User(uid, f"u{uid}", "", role, False, now))

    meeting = Meeting(1, "t", "", now, None, MeetingState.OPEN, None, 7, 8, None, now, None, None)
    scope = MeetingScope(meeting, frozenset({1}))
    assert not has_priority(user(1, Role.OBSERVER), scope)
    assert has_priority(user(1, Role.DELEGATE), scope)
    assert has_priority(user(1, Role.ADMIN), scope)
    assert has_priority(user(7, Role.CHAIR), scope)
    assert has_priority(user(8, Role.OBSERVER), scope)  # the meeting's staff, whatever the role
    assert has_priority(Principal("point"), scope)


def test_config_defaults_and_overrides(tmp_path: Path) -> None:
    config = load_config(None, env={}, overrides={})
    assert config.signalling.max_participants_per_meeting == 250
    assert config.signalling.max_connections_per_node == 2000
    config = make_config(tmp_path, **{"signalling.max_participants_per_meeting": 0,
                                      "signalling.max_connections_per_node": 5})
    assert config.signalling.max_participants_per_meeting == 0
    assert config.signalling.max_connections_per_node == 5


def test_messages_are_translated() -> None:
    i18n = I18n()
    assert i18n.error_message("vi", "meeting_full", cap=3) == (
        "Hội nghị đã đủ số điểm cầu được phép kết nối (3). Vui lòng liên hệ ban tổ chức.")
    assert "(2000)" in i18n.error_message("vi", "node_full", cap=2000)
    assert "kết nối" in i18n.error_message("vi", "node_full", cap=2000)
    assert i18n.error_message("en", "meeting_full", cap=3).startswith("The meeting already has")


# ------------------------------------------------------------ on a real server


async def test_fourth_join_refused_others_unaffected(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 3})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    d2, _ = await scene.joined_peer(scene.d2_device, "d2")
    late = await scene.peer(scene.delegate, "delegate")
    reply = await refused(late, scene.meeting_id)
    assert reply["details"] == {"cap": 3}
    # connected but not joined: chatting is refused, ping still answered
    await late.send("chat", text="xin chào")
    await late.error("not_joined")
    await late.send("ping", t=1)
    assert (await late.recv())["type"] == "pong"
    # the others are unaffected; the chair sees who was refused
    event = await chair.expect("event", timeout=1.0)
    assert event["event"] == {"type": "admission.refused", "meeting_id": scene.meeting_id,
                              "label": "Đại biểu Lò Thị Bình", "point_code": "D1",
                              "reason": "meeting_full", "cap": 3}
    await still_chatting(d2, chair, "vẫn họp bình thường")
    await d1.expect("chat", text="vẫn họp bình thường")
    assert await presence_count(scene)() == 3
    entries = await scene.services.audit.list(meeting_id=scene.meeting_id,
                                              action="meeting.join_refused")
    assert len(entries) == 1
    assert entries[0].target == "daibieu"
    assert dict(entries[0].details) == {"reason": "meeting_full", "cap": 3}
    text = await (await scene.api.client.get("/metrics")).text()
    assert 'diemcau_admission_refused_total{reason="meeting_full"} 1.0' in text


async def test_observer_refused_before_the_last_place(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 3})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    await scene.joined_peer(scene.d1_link, "d1-link")
    observer = await scene.peer(scene.observer, "observer")
    await refused(observer, scene.meeting_id)
    event = await chair.expect("event", timeout=1.0)
    assert event["event"]["label"] == "quansat" and event["event"]["reason"] == "meeting_full"
    d2, _ = await scene.joined_peer(scene.d2_device, "d2")  # the invited point gets the last place
    await still_chatting(d2, chair, "điểm cầu D2 đã vào")
    await refused(observer, scene.meeting_id)
    entries = await scene.services.audit.list(meeting_id=scene.meeting_id,
                                              action="meeting.join_refused")
    assert [e.target for e in entries] == ["quansat", "quansat"]


async def test_leaving_frees_a_place(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 3})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    d2, _ = await scene.joined_peer(scene.d2_device, "d2")
    late = await scene.peer(scene.delegate, "delegate")
    await refused(late, scene.meeting_id)
    await d1.send("leave", id="bye")
    await d1.expect("left")
    await late.join(scene.meeting_id)
    await d2.close()
    await until(lambda: len(scene.api.client.app[HUB].sessions) == 3)
    await d1.join(scene.meeting_id)  # a closed connection frees its place too
    await still_chatting(late, chair, "đã vào được")


async def test_a_second_window_of_the_same_point_takes_no_second_place(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """A hall PC's room page opens two sockets (controls and video) and a point may join from
    its device and its invitation link at once: the cap counts points and users, not sockets."""
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 3})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    await scene.joined_peer(scene.d1_device, "d1")
    await scene.joined_peer(scene.d2_device, "d2")
    again, _ = await scene.joined_peer(scene.d1_link, "d1-link")  # point D1 again: admitted
    await still_chatting(again, chair, "cửa sổ thứ hai của D1")
    assert await presence_count(scene)() == 4
    late = await scene.peer(scene.delegate, "delegate")  # a new participant: refused
    await refused(late, scene.meeting_id)


async def test_resumed_session_does_not_count_twice(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 3,
                                "signalling.max_connections_per_node": 3})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    await scene.joined_peer(scene.d1_device, "d1")
    d2, _ = await scene.joined_peer(scene.d2_device, "d2")
    d2.drop()
    hub = scene.api.client.app[HUB]
    await until(lambda: any(s.connection is None for s in hub.sessions.values()))
    again, reply = await d2.resume(scene.api.client, "d2-again")
    assert reply["type"] == "resumed", reply
    assert await presence_count(scene)() == 3
    joined = await again.join(scene.meeting_id)  # a repeated join on a full meeting: a snapshot
    assert len(joined["presence"]) == 3
    await still_chatting(again, chair, "đã kết nối lại")
    late = await scene.peer(scene.delegate, "delegate")
    await refused(late, scene.meeting_id)
    assert await presence_count(scene)() == 3


async def test_node_cap(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 0,
                                "signalling.max_connections_per_node": 3})
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    observer = await scene.peer(scene.observer, "observer")
    reply = await refused(observer, scene.meeting_id, NODE_FULL)
    assert reply["details"] == {"cap": 3}
    await scene.joined_peer(scene.d2_device, "d2")
    late = await scene.peer(scene.delegate, "delegate")
    await refused(late, scene.meeting_id, NODE_FULL)
    event = await chair.expect("event", timeout=1.0)
    assert event["event"]["reason"] == "node_full"
    await still_chatting(d1, chair, "máy chủ vẫn chạy")
    entries = await scene.services.audit.list(meeting_id=scene.meeting_id,
                                              action="meeting.join_refused")
    assert {e.details["reason"] for e in entries} == {"node_full"}


async def test_no_cap_admits_everyone(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 0,
                                "signalling.max_connections_per_node": 0})
    peers = await asyncio.gather(*(scene.joined_peer(token, name) for token, name in (
        (scene.chair, "chair"), (scene.d1_device, "d1"), (scene.d2_device, "d2"),
        (scene.observer, "observer"), (scene.delegate, "delegate"), (scene.d1_link, "link"))))
    assert len(peers) == 6
    assert await presence_count(scene)() == 6


@pytest.mark.parametrize("cap", [2])
async def test_concurrent_joins_do_not_overshoot(
        aiohttp_client: ClientFactory, tmp_path: Path, cap: int) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": cap})
    peers = [await scene.peer(token, name) for token, name in (
        (scene.chair, "chair"), (scene.d1_device, "d1"), (scene.d2_device, "d2"),
        (scene.delegate, "delegate"))]
    await asyncio.gather(*(p.send("join", meeting_id=scene.meeting_id) for p in peers))
    replies = [await p.recv() for p in peers]
    kinds = sorted(r["type"] if r["type"] == "joined" else r["code"] for r in replies)
    assert kinds == ["joined", "joined", "meeting_full", "meeting_full"], replies
    assert await presence_count(scene)() == cap


async def test_refused_switch_keeps_the_current_meeting(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    scene = await scene_with(aiohttp_client, tmp_path,
                             **{"signalling.max_participants_per_meeting": 2})
    other = await scene.services.calendar.create(
        MeetingDraft("Họp chuyên đề", datetime.now(UTC) + timedelta(hours=2),
                     chair_username="chutoa"), created_by=None)
    await scene.services.calendar.invite(other.id, InviteSelection(codes=("D1", "D2")))
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    d1, _ = await scene.joined_peer(scene.d1_device, "d1")
    d2 = await scene.peer(scene.d2_device, "d2")
    await d2.join(other.id)
    await refused(d2, scene.meeting_id)
    hub = scene.api.client.app[HUB]
    assert [e.label for e in await hub.rooms.presence.list(other.id)] == ["Huyện Mai Châu"]
    await d2.send("chat", text="vẫn ở cuộc họp cũ")
    message = await d2.expect("chat", text="vẫn ở cuộc họp cũ")
    assert message["meeting_id"] == other.id
    await d1.send("leave")
    await d1.expect("left")
    await d2.join(scene.meeting_id)  # a place freed: the switch goes through
    assert await hub.rooms.presence.list(other.id) == []
    await still_chatting(d2, chair, "đã chuyển sang")
