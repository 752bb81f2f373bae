"""Attendance (điểm danh): who is present, per invited bridge point, and roll calls.

A point's status combines what the record says and what is live:
- ``in_hall`` (có mặt tại hội trường) when staff or the point itself reported it, with the
  headcount the point gave;
- ``online`` (trực tuyến) when a session of the point is in the meeting now (the WS hub's
  presence), or when staff marked it so;
- ``absent`` (vắng mặt) with a reason, when marked so and not online;
- ``unknown`` otherwise.
The join/leave log (``presence_log``, written by the hub) gives first join, last leave and
total online time. "Present" for votes = ``online`` or ``in_hall``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .audit import record
from .bus import Bus
from .calendar import new_id, topic
from .clock import utcnow
from .errors import Conflict, Invalid, NotFound
from .models import BridgePoint, MeetingState, PointLevel, Principal
from .presence import PresenceEntry
from .store.db import Database
from .store.tables import bridge_points, invitations, meetings, presence_log
from .store.tables_conduct import attendance, point_controls, roll_call_confirmations, roll_calls
from .text import clean_line

MAX_HEADCOUNT = 10000


class Status(str, enum.Enum):
    ONLINE = "online"
    IN_HALL = "in_hall"
    ABSENT = "absent"
    UNKNOWN = "unknown"


class PresenceView(Protocol):
    """The part of the hub's ``PresenceStore`` attendance reads."""

    async def list(self, meeting_id: int) -> list[PresenceEntry]: ...


class LivePresence:
    """"Who is in meeting M now", for domain services created before the WS hub.

    The hub attaches its presence store at start (``server/ws/__init__.py``); until then (and
    in domain tests without a hub) nobody is online.
    """

    def __init__(self, store: PresenceView | None = None) -> None:
        self._store = store

    def attach(self, store: PresenceView | None) -> None:
        self._store = store

    async def list(self, meeting_id: int) -> list[PresenceEntry]:
        return [] if self._store is None else await self._store.list(meeting_id)

    async def online_point_codes(self, meeting_id: int) -> set[str]:
        return {e.point.code for e in await self.list(meeting_id) if e.point is not None}

    async def online_usernames(self, meeting_id: int) -> set[str]:
        return {e.user.username for e in await self.list(meeting_id) if e.user is not None}

    async def is_point_present(self, meeting_id: int, point_code: str) -> bool:
        return point_code in await self.online_point_codes(meeting_id)

    async def is_user_present(self, meeting_id: int, username: str) -> bool:
        return username in await self.online_usernames(meeting_id)


@dataclass(frozen=True)
class PointAttendance:
    point_code: str
    name: str
    level: str
    status: Status
    headcount: int | None
    reason: str
    first_joined_at: datetime | None
    last_left_at: datetime | None
    online_seconds: int


@dataclass(frozen=True)
class RollCall:
    """A roll call (điểm danh) the chair started; points confirm."""

    id: int
    started_at: datetime
    confirmed: tuple[str, ...]
    closed: bool


@dataclass(frozen=True)
class AttendanceSheet:
    points: list[PointAttendance]
    roll_call: RollCall | None

    def present_codes(self) -> set[str]:
        return {p.point_code for p in self.points if p.status in (Status.ONLINE, Status.IN_HALL)}


def _point(row: Any) -> BridgePoint:
    return BridgePoint(row.id, row.code, row.name, PointLevel(row.level), row.parent_id, row.enabled,
                       row.created_at)


async def invited_points(conn: AsyncConnection, meeting_id: int) -> list[BridgePoint]:
    """The meeting's invited points, province first then by code."""
    rows = (await conn.execute(
        sa.select(bridge_points).join(invitations, invitations.c.point_id == bridge_points.c.id)
        .where(invitations.c.meeting_id == meeting_id))).all()
    return sorted((_point(r) for r in rows), key=lambda p: (p.level.rank, p.code))


async def invited_point(conn: AsyncConnection, meeting_id: int, code: str) -> BridgePoint:
    row = (await conn.execute(
        sa.select(bridge_points).join(invitations, invitations.c.point_id == bridge_points.c.id)
        .where(invitations.c.meeting_id == meeting_id, bridge_points.c.code == code))).first()
    if row is None:
        raise NotFound(f"point {code!r} is not invited to this meeting", code="not_invited",
                       details={"point_code": code})
    return _point(row)


async def require_not_closed(conn: AsyncConnection, meeting_id: int) -> None:
    """Conduct (floor, votes) happens while a meeting is scheduled or open, not after."""
    state = (await conn.execute(sa.select(meetings.c.state).where(meetings.c.id == meeting_id))).scalar()
    if state is None:
        raise NotFound(f"no meeting {meeting_id}", code="meeting_not_found")
    if state == MeetingState.CLOSED.value:
        raise Conflict("the meeting is closed", code="meeting_closed")


async def removed_point_ids(conn: AsyncConnection, meeting_id: int) -> set[int]:
    return set((await conn.execute(sa.select(point_controls.c.point_id).where(
        point_controls.c.meeting_id == meeting_id, point_controls.c.removed.is_(True)))).scalars())


def parse_status(value: str) -> Status:
    try:
        status = Status(value)
    except ValueError:
        raise Invalid("status: one of online, in_hall, absent", code="invalid_status",
                      details={"field": "status"}) from None
    if status is Status.UNKNOWN:
        raise Invalid("status: one of online, in_hall, absent", code="invalid_status", details={"field": "status"})
    return status


def check_headcount(headcount: int | None) -> None:
    if headcount is not None and not 0 <= headcount <= MAX_HEADCOUNT:
        raise Invalid(f"headcount: between 0 and {MAX_HEADCOUNT}", code="invalid_headcount",
                      details={"field": "headcount"})


class Attendance:
    def __init__(self, db: Database, bus: Bus, presence: LivePresence) -> None:
        self.db = db
        self.bus = bus
        self.presence = presence

    async def sheet(self, meeting_id: int) -> AttendanceSheet:
        online = await self.presence.online_point_codes(meeting_id)
        now = utcnow()
        async with self.db.connect() as conn:
            points = await invited_points(conn, meeting_id)
            marks = {r.point_id: r for r in (await conn.execute(
                sa.select(attendance).where(attendance.c.meeting_id == meeting_id))).all()}
            log_rows = (await conn.execute(sa.select(presence_log).where(
                presence_log.c.meeting_id == meeting_id, presence_log.c.point_id.is_not(None)))).all()
            roll = await self._roll_call(conn, meeting_id)
        joins: dict[int, list[Any]] = {}
        for r in log_rows:
            joins.setdefault(r.point_id, []).append(r)
        out = []
        for p in points:
            mark = marks.get(p.id)
            if mark is not None and mark.status == Status.IN_HALL.value:
                status = Status.IN_HALL
            elif p.code in online:
                status = Status.ONLINE
            elif mark is not None:
                status = Status(mark.status)
            else:
                status = Status.UNKNOWN
            rows = joins.get(p.id, [])
            seconds = _union_seconds([(r.joined_at, r.left_at or now) for r in rows])
            lefts = [r.left_at for r in rows if r.left_at is not None]
            out.append(PointAttendance(
                p.code, p.name, p.level.value, status, mark.headcount if mark is not None else None,
                mark.reason if mark is not None and status is Status.ABSENT else "",
                min((r.joined_at for r in rows), default=None),
                max(lefts) if lefts and all(r.left_at is not None for r in rows) else None,
                seconds))
        return AttendanceSheet(out, roll)

    async def present_point_ids(self, meeting_id: int) -> set[int]:
        """Invited, not removed, and online now or reported in the hall / online."""
        online = await self.presence.online_point_codes(meeting_id)
        async with self.db.connect() as conn:
            points = await invited_points(conn, meeting_id)
            removed = await removed_point_ids(conn, meeting_id)
            marked = set((await conn.execute(sa.select(attendance.c.point_id).where(
                attendance.c.meeting_id == meeting_id,
                attendance.c.status.in_([Status.ONLINE.value, Status.IN_HALL.value])))).scalars())
        return {p.id for p in points if p.id not in removed and (p.code in online or p.id in marked)}

    async def set(self, meeting_id: int, actor: Principal, point_code: str, status: Status, *,
                  headcount: int | None = None, reason: str = "") -> None:
        check_headcount(headcount)
        reason = clean_line(reason)[:500]
        if status is not Status.ABSENT:
            reason = ""
        async with self.db.transaction() as conn:
            point = await invited_point(conn, meeting_id, point_code)
            values = {"status": status.value, "headcount": headcount, "reason": reason,
                      "updated_at": utcnow(), "updated_by": actor.label[:255]}
            done = await conn.execute(attendance.update().where(
                attendance.c.meeting_id == meeting_id, attendance.c.point_id == point.id).values(**values))
            if not done.rowcount:
                await conn.execute(attendance.insert().values(meeting_id=meeting_id, point_id=point.id, **values))
            await record(conn, actor, "attendance.set", meeting_id=meeting_id, target=point.code,
                         details={"status": status.value, "headcount": headcount})
        await self.bus.publish(topic(meeting_id), {"type": "attendance.changed", "point_code": point.code})

    # ------------------------------------------------------------ roll call

    async def _roll_call(self, conn: AsyncConnection, meeting_id: int) -> RollCall | None:
        row = (await conn.execute(sa.select(roll_calls).where(roll_calls.c.meeting_id == meeting_id)
                                  .order_by(roll_calls.c.id.desc()).limit(1))).first()
        if row is None:
            return None
        codes = (await conn.execute(
            sa.select(bridge_points.c.code)
            .join(roll_call_confirmations, roll_call_confirmations.c.point_id == bridge_points.c.id)
            .where(roll_call_confirmations.c.roll_call_id == row.id)
            .order_by(roll_call_confirmations.c.confirmed_at, bridge_points.c.code))).scalars()
        return RollCall(row.id, row.started_at, tuple(codes), row.closed_at is not None)

    async def start_roll_call(self, meeting_id: int, actor: Principal) -> RollCall:
        async with self.db.transaction() as conn:
            current = await self._roll_call(conn, meeting_id)
            if current is not None and not current.closed:
                raise Conflict("a roll call is already running", code="roll_call_open",
                               details={"roll_call_id": current.id})
            roll_id = new_id(await conn.execute(roll_calls.insert().values(
                meeting_id=meeting_id, started_at=utcnow())))
            await record(conn, actor, "roll_call.start", meeting_id=meeting_id, target=str(roll_id))
            roll = await self._roll_call(conn, meeting_id)
        assert roll is not None
        await self.bus.publish(topic(meeting_id), {"type": "roll_call.started", "id": roll.id})
        return roll

    async def confirm_roll_call(self, meeting_id: int, actor: Principal, headcount: int | None) -> RollCall:
        """The caller's point answers the running roll call (idempotent: a repeat updates the
        headcount)."""
        check_headcount(headcount)
        if actor.point is None:
            raise Invalid("only a bridge point (or a user attending from one) can answer a roll call",
                          code="no_point")
        async with self.db.transaction() as conn:
            point = await invited_point(conn, meeting_id, actor.point.code)
            roll = await self._roll_call(conn, meeting_id)
            if roll is None or roll.closed:
                raise Conflict("no roll call is running", code="no_roll_call")
            key = (roll_call_confirmations.c.roll_call_id == roll.id) & (roll_call_confirmations.c.point_id == point.id)
            if (await conn.execute(sa.select(roll_call_confirmations.c.point_id).where(key))).first():
                if headcount is not None:
                    await conn.execute(roll_call_confirmations.update().where(key).values(headcount=headcount))
            else:
                await conn.execute(roll_call_confirmations.insert().values(
                    roll_call_id=roll.id, point_id=point.id, headcount=headcount, confirmed_at=utcnow()))
            if headcount is not None:  # a headcount is a report from the hall
                values = {"status": Status.IN_HALL.value, "headcount": headcount, "reason": "",
                          "updated_at": utcnow(), "updated_by": actor.label[:255]}
                done = await conn.execute(attendance.update().where(
                    attendance.c.meeting_id == meeting_id, attendance.c.point_id == point.id).values(**values))
                if not done.rowcount:
                    await conn.execute(attendance.insert().values(meeting_id=meeting_id, point_id=point.id, **values))
            roll = await self._roll_call(conn, meeting_id)
        assert roll is not None
        await self.bus.publish(topic(meeting_id), {"type": "attendance.changed", "point_code": point.code})
        return roll

    async def close_roll_call(self, meeting_id: int, actor: Principal) -> RollCall:
        async with self.db.transaction() as conn:
            roll = await self._roll_call(conn, meeting_id)
            if roll is None or roll.closed:
                raise Conflict("no roll call is running", code="no_roll_call")
            await conn.execute(roll_calls.update().where(roll_calls.c.id == roll.id).values(closed_at=utcnow()))
            await record(conn, actor, "roll_call.close", meeting_id=meeting_id, target=str(roll.id),
                         details={"confirmed": len(roll.confirmed)})
            roll = await self._roll_call(conn, meeting_id)
        assert roll is not None
        await self.bus.publish(topic(meeting_id), {"type": "roll_call.closed", "id": roll.id})
        return roll


def _union_seconds(spans: list[tuple[datetime, datetime]]) -> int:
    """Seconds covered by the union of spans (two sessions of one point overlap)."""
    total = 0.0
    end: datetime | None = None
    start: datetime | None = None
    for a, b in sorted(spans):
        if end is None or a > end:
            if end is not None and start is not None:
                total += (end - start).total_seconds()
            start, end = a, b
        elif b > end:
            end = b
    if end is not None and start is not None:
        total += (end - start).total_seconds()
    return int(total)
