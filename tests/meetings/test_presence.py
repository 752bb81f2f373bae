"""Presence entries, the in-memory presence store, and the durable presence log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meetings.calendar import MeetingDraft
from meetings.models import Principal
from meetings.presence import MemoryPresence, PointRef, PresenceEntry, PresenceLog, UserRef
from server.services import Services

T0 = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def entry(key: str, minute: int = 0) -> PresenceEntry:
    return PresenceEntry(
        key,
        "point",
        f"Xã {key}",
        T0 + timedelta(minutes=minute),
        "node-a",
        point=PointRef(key.upper(), f"Xã {key}", "commune"),
    )


def test_entries_validate_and_round_trip() -> None:
    chair = PresenceEntry(
        "s1", "user", "Chủ tọa", T0, "node-a", user=UserRef("chutoa", "Chủ tọa", "chair")
    )
    assert chair.participant() == {
        "key": "s1",
        "kind": "user",
        "label": "Chủ tọa",
        "point": None,
        "user": {"username": "chutoa", "display_name": "Chủ tọa", "role": "chair"},
        "since": "2026-03-02T07:30:00Z",
    }
    assert "node_id" not in chair.participant()
    assert PresenceEntry.from_dict(chair.to_dict()) == chair
    assert PresenceEntry.from_dict(entry("x").to_dict()) == entry("x")
    with pytest.raises(ValueError):
        PresenceEntry("s", "robot", "?", T0, "n")
    with pytest.raises(ValueError):
        PresenceEntry("s", "user", "?", T0.replace(tzinfo=None), "n")


async def test_memory_presence() -> None:
    store = MemoryPresence()
    await store.start()
    await store.add(1, entry("b", 1))
    await store.add(1, entry("c", 0))
    await store.add(1, entry("a", 1))
    await store.add(2, entry("z"))
    assert [e.key for e in await store.list(1)] == ["c", "a", "b"]  # by since, then key
    await store.add(1, entry("c", 2))  # same key replaces
    assert [e.key for e in await store.list(1)] == ["a", "b", "c"]
    assert await store.remove(1, "a") == entry("a", 1)
    assert await store.remove(1, "a") is None
    assert await store.remove(9, "a") is None
    assert [e.key for e in await store.list(1)] == ["b", "c"]
    assert [e.key for e in await store.list(2)] == ["z"]
    await store.close()
    assert await store.list(1) == []


async def test_presence_log(services: Services) -> None:
    point = await services.registry.create("D1", "Huyện Lạc Sơn", "province")
    meeting = await services.calendar.create(MeetingDraft("Giao ban", T0), created_by=None)
    log = PresenceLog(services.db)
    principal = Principal("point", point=point)
    first = PresenceEntry.for_principal("k1", principal, node_id="n", since=T0)
    assert first.point == PointRef("D1", "Huyện Lạc Sơn", "province") and first.user is None
    row1 = await log.joined(meeting.id, first, principal)
    row2 = await log.joined(
        meeting.id,
        PresenceEntry.for_principal("k2", principal, node_id="n", since=T0 + timedelta(seconds=5)),
        principal,
    )
    await log.left(row1, at=T0 + timedelta(minutes=1))
    await log.left(row1, at=T0 + timedelta(minutes=9))  # the first leave stands
    history = await log.history(meeting.id)
    assert [(r.session_key, r.point_id, r.user_id, r.label) for r in history] == [
        ("k1", point.id, None, "Huyện Lạc Sơn"),
        ("k2", point.id, None, "Huyện Lạc Sơn"),
    ]
    assert history[0].joined_at == T0 and history[0].left_at == T0 + timedelta(minutes=1)
    assert history[1].left_at is None
    assert await log.close_dangling(at=T0 + timedelta(minutes=2)) == 1
    assert (await log.history(meeting.id))[1].left_at == T0 + timedelta(minutes=2)
    assert row2 != row1
