"""Who is in a meeting right now (điểm danh trực tuyến), and the durable record of it.

:class:`PresenceStore` is the live view shared by every server node: one entry per connected
session per meeting, tagged with the node that holds the connection. :class:`MemoryPresence`
serves one process; ``server.bus.redis_presence.RedisPresence`` implements the same protocol
for a cluster. :class:`PresenceLog` writes joins and leaves to ``presence_log`` so attendance
survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from .clock import isoformat, utcnow
from .models import Principal
from .store.db import Database
from .store.tables import presence_log


@dataclass(frozen=True)
class PointRef:
    """The bridge point a participant is at, as others see it."""

    code: str
    name: str
    level: str


@dataclass(frozen=True)
class UserRef:
    """The user account behind a participant, as others see it."""

    username: str
    display_name: str
    role: str


@dataclass(frozen=True)
class PresenceEntry:
    """One session in a meeting room (người/điểm cầu đang tham dự)."""

    key: str
    """The session's public key: unique per connection session, stable across resumes."""
    kind: str
    """``user`` (a logged-in person) or ``point`` (a bridge-point device or invitation link)."""
    label: str
    """What to show: the user's display name, or the point's name."""
    since: datetime
    """When this session joined (UTC)."""
    node_id: str
    """The server node holding the connection."""
    point: PointRef | None = None
    user: UserRef | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("user", "point"):
            raise ValueError(f"presence kind must be user or point, not {self.kind!r}")
        if self.since.tzinfo is None:
            raise ValueError("presence since must be timezone-aware")

    @classmethod
    def for_principal(
        cls, key: str, principal: Principal, *, node_id: str, since: datetime | None = None
    ) -> PresenceEntry:
        point = principal.point
        user = principal.user
        return cls(
            key=key,
            kind="user" if user is not None else "point",
            label=principal.label,
            since=since or utcnow(),
            node_id=node_id,
            point=PointRef(point.code, point.name, point.level.value) if point else None,
            user=UserRef(user.username, user.display_name, user.role.value) if user else None,
        )

    def participant(self) -> dict[str, Any]:
        """The public JSON form (protocol ``participant``); no node id."""
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "point": None
            if self.point is None
            else {"code": self.point.code, "name": self.point.name, "level": self.point.level},
            "user": None
            if self.user is None
            else {
                "username": self.user.username,
                "display_name": self.user.display_name,
                "role": self.user.role,
            },
            "since": isoformat(self.since),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form for stores shared between nodes (``participant`` plus ``node_id``)."""
        return {**self.participant(), "node_id": self.node_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PresenceEntry:
        point, user = data.get("point"), data.get("user")
        return cls(
            key=str(data["key"]),
            kind=str(data["kind"]),
            label=str(data["label"]),
            since=datetime.fromisoformat(str(data["since"])),
            node_id=str(data["node_id"]),
            point=PointRef(point["code"], point["name"], point["level"]) if point else None,
            user=UserRef(user["username"], user["display_name"], user["role"]) if user else None,
        )


class PresenceStore(Protocol):
    """The live presence of every meeting, shared by the nodes of a deployment."""

    async def start(self) -> None:
        """Connect / begin any background upkeep; called once by the hub before use."""

    async def add(self, meeting_id: int, entry: PresenceEntry) -> None:
        """Record ``entry`` in the meeting (replacing one with the same key)."""

    async def remove(self, meeting_id: int, key: str) -> PresenceEntry | None:
        """Forget the session ``key``; returns what was there, if anything."""

    async def list(self, meeting_id: int) -> list[PresenceEntry]:
        """Everyone in the meeting, ordered by ``since`` then ``key``."""

    async def close(self) -> None:
        """Release connections; safe to call twice."""


def ordered(entries: list[PresenceEntry]) -> list[PresenceEntry]:
    return sorted(entries, key=lambda e: (e.since, e.key))


class MemoryPresence:
    """Presence for a single process (the default, with ``bus.backend: memory``)."""

    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, PresenceEntry]] = {}

    async def start(self) -> None:
        return None

    async def add(self, meeting_id: int, entry: PresenceEntry) -> None:
        self._rooms.setdefault(meeting_id, {})[entry.key] = entry

    async def remove(self, meeting_id: int, key: str) -> PresenceEntry | None:
        room = self._rooms.get(meeting_id)
        if room is None:
            return None
        entry = room.pop(key, None)
        if not room:
            del self._rooms[meeting_id]
        return entry

    async def list(self, meeting_id: int) -> list[PresenceEntry]:
        return ordered(list(self._rooms.get(meeting_id, {}).values()))

    async def close(self) -> None:
        self._rooms.clear()


@dataclass(frozen=True)
class PresenceRecord:
    """One row of the durable presence log."""

    id: int
    meeting_id: int
    session_key: str
    point_id: int | None
    user_id: int | None
    label: str
    joined_at: datetime
    left_at: datetime | None


class PresenceLog:
    """Durable joins and leaves (``presence_log``), the raw material of attendance."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def joined(self, meeting_id: int, entry: PresenceEntry, principal: Principal) -> int:
        """Record a join; returns the row id to close with :meth:`left`."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                presence_log.insert().values(
                    meeting_id=meeting_id,
                    session_key=entry.key,
                    point_id=principal.point.id if principal.point else None,
                    user_id=principal.user.id if principal.user else None,
                    label=entry.label[:255],
                    joined_at=entry.since,
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def left(self, row_id: int, *, at: datetime | None = None) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                presence_log.update()
                .where(presence_log.c.id == row_id, presence_log.c.left_at.is_(None))
                .values(left_at=at or utcnow())
            )

    async def close_dangling(self, *, at: datetime | None = None) -> int:
        """Close rows a crashed process left open (only valid when this is the only node)."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                presence_log.update()
                .where(presence_log.c.left_at.is_(None))
                .values(left_at=at or utcnow())
            )
        return int(result.rowcount or 0)

    async def history(self, meeting_id: int) -> list[PresenceRecord]:
        """Every join of the meeting, oldest first."""
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(presence_log)
                    .where(presence_log.c.meeting_id == meeting_id)
                    .order_by(presence_log.c.joined_at, presence_log.c.id)
                )
            ).all()
        return [
            PresenceRecord(
                r.id,
                r.meeting_id,
                r.session_key,
                r.point_id,
                r.user_id,
                r.label,
                r.joined_at,
                r.left_at,
            )
            for r in rows
        ]
