"""Scheduling meetings and inviting bridge points (lịch họp, mời điểm cầu)."""

from __future__ import annotations

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

TRANSITIONS = {
    MeetingState.SCHEDULED: {MeetingState.OPEN, MeetingState.CLOSED},
    MeetingState.OPEN: {MeetingState.CLOSED},
    MeetingState.CLOSED: set(),
}


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

    async def _user_id(self, conn: Any, username: str | None, roles: set[Role], what: str) -> int | None:
        if not username:
            return None
        row = (await conn.execute(sa.select(users.c.id, users.c.role).where(users.c.username == username.strip().lower()))).first()
        if row is None:
            raise NotFound(f"{what}: no user {username!r}", code="user_not_found")
        if Role(row.role) not in roles:
            raise Invalid(f"{what}: {username!r} has role {row.role}", code="invalid_role")
        return row.id

    async def create(self, draft: MeetingDraft, *, created_by: int | None) -> Meeting:
        title = clean_line(draft.title)
        if not title:
            raise Invalid("title is empty", code="invalid_title")
        if len(title) > 500:
            raise Invalid("title is longer than 500 characters", code="invalid_title")
        if draft.starts_at.tzinfo is None:
            raise Invalid("starts_at needs a timezone (e.g. 2026-12-01T08:00:00+07:00)", code="invalid_time")
        if draft.ends_at is not None and draft.ends_at <= draft.starts_at:
            raise Invalid("ends_at must be after starts_at", code="invalid_time")
        async with self.db.transaction() as conn:
            host_id = None
            if draft.host_point_code:
                host_id = await conn.scalar(sa.select(bridge_points.c.id).where(bridge_points.c.code == draft.host_point_code))
                if host_id is None:
                    raise NotFound(f"host point: no code {draft.host_point_code!r}", code="point_not_found")
            chair_id = await self._user_id(conn, draft.chair_username, {Role.CHAIR, Role.ADMIN}, "chair")
            secretary_id = await self._user_id(conn, draft.secretary_username, {Role.SECRETARY, Role.CHAIR, Role.ADMIN}, "secretary")
            result = await conn.execute(meetings.insert().values(
                title=title, title_folded=fold(title), description=clean_text(draft.description),
                starts_at=draft.starts_at, ends_at=draft.ends_at, state=MeetingState.SCHEDULED.value,
                host_point_id=host_id, chair_id=chair_id, secretary_id=secretary_id,
                created_by=created_by, created_at=utcnow(),
            ))
            meeting_id = result.inserted_primary_key[0]
            if host_id is not None:
                await self._invite_ids(conn, meeting_id, [host_id])
        return await self.get(meeting_id)

    async def get(self, meeting_id: int) -> Meeting:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(meetings).where(meetings.c.id == meeting_id))).first()
        if row is None:
            raise NotFound(f"no meeting {meeting_id}", code="meeting_not_found")
        return _meeting(row)

    async def list(self, *, state: MeetingState | None = None, point_ids: set[int] | None = None,
                   user_id: int | None = None, query: str | None = None) -> list[Meeting]:
        """Meetings, soonest first. With ``point_ids``/``user_id``, only those that invite one
        of the points or have the user as chair or secretary (what a non-admin may see)."""
        stmt = sa.select(meetings).order_by(meetings.c.starts_at.desc(), meetings.c.id.desc())
        if state is not None:
            stmt = stmt.where(meetings.c.state == state.value)
        if query:
            stmt = stmt.where(meetings.c.title_folded.contains(fold(query)))
        if point_ids is not None or user_id is not None:
            visible = []
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

    async def invitations(self, meeting_id: int) -> list[Invitation]:
        await self.get(meeting_id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(
                sa.select(invitations.c.created_at.label("invited_at"), invitations.c.expires_at, invitations.c.point_id)
                .where(invitations.c.meeting_id == meeting_id)
            )).all()
        points = {p.id: p for p in await self.registry.list()}
        out = [Invitation(meeting_id, points[r.point_id], r.invited_at, r.expires_at) for r in rows]
        return sorted(out, key=lambda i: (i.point.level.rank, i.point.code))

    async def _invite_ids(self, conn: Any, meeting_id: int, point_ids: list[int]) -> tuple[list[int], dict[int, str]]:
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

    async def _select(self, selection: InviteSelection) -> list[BridgePoint]:
        chosen: dict[int, BridgePoint] = {}
        for code in selection.codes:
            p = await self.registry.by_code(code)
            chosen[p.id] = p
        if selection.under is not None:
            root = await self.registry.by_code(selection.under)
            for p in await self.registry.descendants(root.id):
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
