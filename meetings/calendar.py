"""Scheduling meetings and inviting bridge points (lịch họp, mời điểm cầu)."""

from __future__ import annotations

import builtins
import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .bus import Bus
from .clock import isoformat, utcnow
from .credentials import hash_token, new_token
from .errors import Conflict, Invalid, NotFound, Unauthenticated
from .models import BridgePoint, Invitation, Meeting, MeetingState, PointLevel, Role
from .permissions import MeetingScope
from .registry import Registry
from .store.db import Database
from .store.tables import bridge_points, invitations, meetings, users
from .text import clean_line, clean_text, fold

CHAIR_ROLES = frozenset({Role.CHAIR, Role.ADMIN})
SECRETARY_ROLES = frozenset({Role.SECRETARY, Role.CHAIR, Role.ADMIN})
TRANSITIONS = {
    MeetingState.SCHEDULED: {MeetingState.OPEN, MeetingState.CLOSED},
    MeetingState.OPEN: {MeetingState.CLOSED},
    MeetingState.CLOSED: set(),
}


def new_id(result: Any) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def topic(meeting_id: int) -> str:
    """The bus topic carrying one meeting's events."""
    return f"meeting.{meeting_id}"


def _meeting(row: Any) -> Meeting:
    return Meeting(
        id=row.id, title=row.title, description=row.description, starts_at=row.starts_at,
        ends_at=row.ends_at, state=MeetingState(row.state), host_point_id=row.host_point_id,
        chair_id=row.chair_id, secretary_id=row.secretary_id, created_by=row.created_by,
        created_at=row.created_at, opened_at=row.opened_at, closed_at=row.closed_at,
    )


@dataclass(frozen=True)
class MeetingDraft:
    """What a caller gives to schedule a meeting."""

    title: str
    starts_at: datetime
    ends_at: datetime | None = None
    description: str = ""
    host_point_code: str | None = None
    chair_username: str | None = None
    secretary_username: str | None = None


class Unset(enum.Enum):
    """Marks a field a patch leaves as it is (``None`` clears it)."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class MeetingPatch:
    """Changes to a scheduled or open meeting; fields left ``UNSET`` keep their value."""

    title: str | Unset = UNSET
    description: str | Unset = UNSET
    starts_at: datetime | Unset = UNSET
    ends_at: datetime | None | Unset = UNSET
    host_point_code: str | None | Unset = UNSET
    chair_username: str | None | Unset = UNSET
    secretary_username: str | None | Unset = UNSET


def _clean_title(text: str) -> str:
    title = clean_line(text)
    if not title:
        raise Invalid("title is empty", code="invalid_title", details={"field": "title"})
    if len(title) > 500:
        raise Invalid("title is longer than 500 characters", code="invalid_title", details={"field": "title"})
    return title


def _check_times(starts_at: datetime, ends_at: datetime | None) -> None:
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise Invalid("times need a timezone (e.g. 2026-12-01T08:00:00+07:00)", code="invalid_time")
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and not 2000 <= value.year <= 2200:
            raise Invalid(f"{name}: the year must be between 2000 and 2200", code="invalid_time",
                          details={"field": name})
    if ends_at is not None and ends_at <= starts_at:
        raise Invalid("ends_at must be after starts_at", code="invalid_time", details={"field": "ends_at"})


@dataclass(frozen=True)
class InviteSelection:
    """Which points to invite: explicit codes, and/or every point of ``level`` under ``under``
    (e.g. all communes of a district), or of ``level`` everywhere when ``under`` is None."""

    codes: tuple[str, ...] = ()
    under: str | None = None
    level: PointLevel | None = None

    def __post_init__(self) -> None:
        if not self.codes and self.under is None and self.level is None:
            raise Invalid("choose points: codes, under (a parent code) and/or level", code="empty_selection")


@dataclass(frozen=True)
class InviteResult:
    invited: list[BridgePoint]
    already: list[BridgePoint]
    links: dict[str, str]  # point code -> invitation token (shown once)


class MeetingCalendar:
    def __init__(self, db: Database, bus: Bus, registry: Registry, *, invitation_ttl: timedelta = timedelta(days=30)):
        self.db = db
        self.bus = bus
        self.registry = registry
        self.invitation_ttl = invitation_ttl

    async def _user_id(self, conn: Any, username: str | None, roles: frozenset[Role], what: str) -> int | None:
        if not username:
            return None
        field = f"{what}_username"
        row = (await conn.execute(sa.select(users.c.id, users.c.role, users.c.disabled)
                                  .where(users.c.username == username.strip().lower()))).first()
        if row is None:
            raise Invalid(f"{what}: no user {username!r}", code="user_not_found", details={"field": field})
        if Role(row.role) not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise Invalid(f"{what}: {username!r} has role {row.role} (needs {allowed})", code="invalid_role",
                          details={"field": field})
        if row.disabled:
            raise Invalid(f"{what}: account {username!r} is disabled", code="user_disabled", details={"field": field})
        return int(row.id)

    async def _host_id(self, conn: Any, code: str | None) -> int | None:
        if not code:
            return None
        row = (await conn.execute(sa.select(bridge_points.c.id, bridge_points.c.enabled)
                                  .where(bridge_points.c.code == code))).first()
        if row is None:
            raise Invalid(f"host point: no code {code!r}", code="point_not_found",
                          details={"field": "host_point_code"})
        if not row.enabled:
            raise Invalid(f"host point {code!r} is disabled", code="point_disabled")
        return int(row.id)

    async def create(self, draft: MeetingDraft, *, created_by: int | None) -> Meeting:
        title = _clean_title(draft.title)
        _check_times(draft.starts_at, draft.ends_at)
        async with self.db.transaction() as conn:
            host_id = await self._host_id(conn, draft.host_point_code)
            chair_id = await self._user_id(conn, draft.chair_username, CHAIR_ROLES, "chair")
            secretary_id = await self._user_id(conn, draft.secretary_username, SECRETARY_ROLES, "secretary")
            result = await conn.execute(meetings.insert().values(
                title=title, title_folded=fold(title), description=clean_text(draft.description),
                starts_at=draft.starts_at, ends_at=draft.ends_at, state=MeetingState.SCHEDULED.value,
                host_point_id=host_id, chair_id=chair_id, secretary_id=secretary_id,
                created_by=created_by, created_at=utcnow(),
            ))
            meeting_id = new_id(result)
            if host_id is not None:
                await self._invite_ids(conn, meeting_id, [host_id])
        return await self.get(meeting_id)

    async def update(self, meeting_id: int, patch: MeetingPatch) -> Meeting:
        """Apply ``patch`` to a meeting that is not closed; a new host point is invited."""
        meeting = await self.get(meeting_id)
        if meeting.state is MeetingState.CLOSED:
            raise Conflict("the meeting is closed", code="meeting_closed")
        values: dict[str, Any] = {}
        if not isinstance(patch.title, Unset):
            values["title"] = _clean_title(patch.title)
            values["title_folded"] = fold(values["title"])
        if not isinstance(patch.description, Unset):
            values["description"] = clean_text(patch.description)
        starts_at = meeting.starts_at if isinstance(patch.starts_at, Unset) else patch.starts_at
        ends_at = meeting.ends_at if isinstance(patch.ends_at, Unset) else patch.ends_at
        _check_times(starts_at, ends_at)
        if not isinstance(patch.starts_at, Unset):
            values["starts_at"] = starts_at
        if not isinstance(patch.ends_at, Unset):
            values["ends_at"] = ends_at
        async with self.db.transaction() as conn:
            if not isinstance(patch.host_point_code, Unset):
                values["host_point_id"] = await self._host_id(conn, patch.host_point_code)
                if values["host_point_id"] is not None:
                    await self._invite_ids(conn, meeting_id, [values["host_point_id"]])
            if not isinstance(patch.chair_username, Unset):
                values["chair_id"] = await self._user_id(conn, patch.chair_username, CHAIR_ROLES, "chair")
            if not isinstance(patch.secretary_username, Unset):
                values["secretary_id"] = await self._user_id(conn, patch.secretary_username, SECRETARY_ROLES, "secretary")
            if values:
                await conn.execute(meetings.update().where(meetings.c.id == meeting_id).values(**values))
        updated = await self.get(meeting_id)
        if values:
            await self.bus.publish(topic(meeting_id), {
                "type": "meeting.updated", "meeting_id": meeting_id,
                "fields": sorted(k for k in values if k != "title_folded"),
            })
        return updated

    async def get(self, meeting_id: int) -> Meeting:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(meetings).where(meetings.c.id == meeting_id))).first()
        if row is None:
            raise NotFound(f"no meeting {meeting_id}", code="meeting_not_found")
        return _meeting(row)

    async def list(self, *, state: MeetingState | None = None, point_ids: set[int] | None = None,
                   user_id: int | None = None, query: str | None = None, meeting_id: int | None = None,
                   limit: int | None = None, offset: int = 0) -> list[Meeting]:
        """Meetings, latest start first. With ``point_ids``/``user_id``, only those that invite
        one of the points or have the user as chair or secretary (what a non-admin may see);
        with ``meeting_id`` only that one (what an invitation link may see)."""
        stmt = sa.select(meetings).order_by(meetings.c.starts_at.desc(), meetings.c.id.desc())
        if state is not None:
            stmt = stmt.where(meetings.c.state == state.value)
        if query and query.strip():
            stmt = stmt.where(meetings.c.title_folded.contains(fold(query), autoescape=True))
        if meeting_id is not None:
            stmt = stmt.where(meetings.c.id == meeting_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        if point_ids is not None or user_id is not None:
            visible: builtins.list[sa.ColumnElement[bool]] = []
            if point_ids:
                visible.append(meetings.c.id.in_(
                    sa.select(invitations.c.meeting_id).where(invitations.c.point_id.in_(point_ids))))
            if user_id is not None:
                visible.append(meetings.c.chair_id == user_id)
                visible.append(meetings.c.secretary_id == user_id)
            stmt = stmt.where(sa.or_(*visible) if visible else sa.false())
        async with self.db.connect() as conn:
            return [_meeting(r) for r in (await conn.execute(stmt)).all()]

    async def scope(self, meeting_id: int) -> MeetingScope:
        """What the permission table needs to decide on this meeting."""
        meeting = await self.get(meeting_id)
        async with self.db.connect() as conn:
            ids = (await conn.execute(sa.select(invitations.c.point_id).where(invitations.c.meeting_id == meeting_id))).scalars()
            return MeetingScope(meeting, frozenset(ids))

    async def invitations(self, meeting_id: int) -> builtins.list[Invitation]:
        await self.get(meeting_id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(
                sa.select(invitations.c.created_at.label("invited_at"), invitations.c.expires_at, invitations.c.point_id)
                .where(invitations.c.meeting_id == meeting_id)
            )).all()
        points = {p.id: p for p in await self.registry.list()}
        out = [Invitation(meeting_id, points[r.point_id], r.invited_at, r.expires_at) for r in rows]
        return sorted(out, key=lambda i: (i.point.level.rank, i.point.code))

    async def _invite_ids(self, conn: Any, meeting_id: int,
                          point_ids: builtins.list[int]) -> tuple[builtins.list[int], dict[int, str]]:
        have = set((await conn.execute(sa.select(invitations.c.point_id).where(invitations.c.meeting_id == meeting_id))).scalars())
        now = utcnow()
        new_ids = [pid for pid in point_ids if pid not in have]
        tokens: dict[int, str] = {}
        for pid in new_ids:
            tokens[pid] = new_token("dci")
            await conn.execute(invitations.insert().values(
                meeting_id=meeting_id, point_id=pid, token_hash=hash_token(tokens[pid]),
                created_at=now, expires_at=now + self.invitation_ttl,
            ))
        return new_ids, tokens

    async def _select(self, selection: InviteSelection) -> builtins.list[BridgePoint]:
        """The points a selection names. ``under`` includes the parent itself when no level
        is given (or when it is of that level): "everything under the district" is the
        district hall and its communes."""
        by_code = {p.code: p for p in await self.registry.list()}
        unknown = [c for c in (*selection.codes, *([selection.under] if selection.under else [])) if c not in by_code]
        if unknown:
            raise Invalid(f"unknown bridge point code(s): {', '.join(unknown)}", code="unknown_points",
                          details={"codes": unknown})
        chosen: dict[int, BridgePoint] = {}
        for code in selection.codes:
            p = by_code[code]
            chosen[p.id] = p
        if selection.under is not None:
            root = by_code[selection.under]
            for p in [root, *await self.registry.descendants(root.id)]:
                if selection.level is None or p.level is selection.level:
                    chosen[p.id] = p
        elif selection.level is not None:
            for p in await self.registry.list(level=selection.level):
                chosen[p.id] = p
        return [p for p in chosen.values() if p.enabled or p.code in selection.codes]

    async def invite(self, meeting_id: int, selection: InviteSelection) -> InviteResult:
        meeting = await self.get(meeting_id)
        if meeting.state is MeetingState.CLOSED:
            raise Conflict("the meeting is closed", code="meeting_closed")
        points = await self._select(selection)
        disabled = [p.code for p in points if not p.enabled]
        if disabled:
            raise Invalid(f"disabled bridge point(s): {', '.join(disabled)}", code="point_disabled")
        async with self.db.transaction() as conn:
            new_ids, tokens = await self._invite_ids(conn, meeting_id, [p.id for p in points])
        by_id = {p.id: p for p in points}
        invited = sorted((by_id[i] for i in new_ids), key=lambda p: p.code)
        already = sorted((p for p in points if p.id not in tokens), key=lambda p: p.code)
        if invited:
            await self.bus.publish(topic(meeting_id), {
                "type": "invitations.changed", "meeting_id": meeting_id,
                "invited": [p.code for p in invited],
            })
        return InviteResult(invited, already, {by_id[i].code: t for i, t in tokens.items()})

    async def renew_link(self, meeting_id: int, point_id: int) -> str:
        """A fresh invitation token for one point (the old link stops working)."""
        if (await self.get(meeting_id)).state is MeetingState.CLOSED:
            raise Conflict("the meeting is closed", code="meeting_closed")
        token = new_token("dci")
        now = utcnow()
        async with self.db.transaction() as conn:
            result = await conn.execute(
                invitations.update()
                .where(invitations.c.meeting_id == meeting_id, invitations.c.point_id == point_id)
                .values(token_hash=hash_token(token), expires_at=now + self.invitation_ttl)
            )
        if result.rowcount == 0:
            raise NotFound("that point is not invited to this meeting", code="not_invited")
        return token

    async def uninvite(self, meeting_id: int, point_id: int) -> None:
        """Withdraw a point's invitation (its link stops working). The host point stays."""
        if (await self.get(meeting_id)).host_point_id == point_id:
            raise Conflict("the host point cannot be uninvited; change the host first", code="host_point")
        async with self.db.transaction() as conn:
            result = await conn.execute(invitations.delete().where(
                invitations.c.meeting_id == meeting_id, invitations.c.point_id == point_id))
        if result.rowcount == 0:
            raise NotFound("that point is not invited to this meeting", code="not_invited")
        await self.bus.publish(topic(meeting_id), {"type": "invitations.changed", "meeting_id": meeting_id})

    async def resolve_invitation(self, token: str) -> tuple[BridgePoint, int]:
        """The point and meeting an invitation token admits, or :class:`Unauthenticated`."""
        async with self.db.connect() as conn:
            row = (await conn.execute(
                sa.select(invitations.c.point_id, invitations.c.meeting_id, invitations.c.expires_at)
                .where(invitations.c.token_hash == hash_token(token))
            )).first()
        if row is None:
            raise Unauthenticated("unknown or replaced invitation link", code="invalid_token")
        if row.expires_at <= utcnow():
            raise Unauthenticated("this invitation link has expired", code="token_expired")
        meeting = await self.get(row.meeting_id)
        if meeting.state is MeetingState.CLOSED:
            raise Unauthenticated("the meeting is over", code="meeting_closed")
        point = await self.registry.get(row.point_id)
        if not point.enabled:
            raise Unauthenticated("this bridge point is disabled", code="point_disabled")
        return point, row.meeting_id

    async def set_state(self, meeting_id: int, state: MeetingState) -> Meeting:
        meeting = await self.get(meeting_id)
        if state is meeting.state:
            return meeting
        if state not in TRANSITIONS[meeting.state]:
            raise Conflict(f"a {meeting.state.value} meeting cannot become {state.value}", code="invalid_transition")
        stamp = {"opened_at": utcnow()} if state is MeetingState.OPEN else {"closed_at": utcnow()}
        async with self.db.transaction() as conn:
            result = await conn.execute(
                meetings.update().where(meetings.c.id == meeting_id, meetings.c.state == meeting.state.value)
                .values(state=state.value, **stamp)
            )
        if result.rowcount == 0:
            raise Conflict("the meeting changed meanwhile; try again", code="concurrent_change")
        updated = await self.get(meeting_id)
        await self.bus.publish(topic(meeting_id), {
            "type": "meeting.state", "meeting_id": meeting_id, "state": state.value,
            "at": isoformat(updated.opened_at if state is MeetingState.OPEN else updated.closed_at),
        })
        return updated
