"""The floor (đăng ký phát biểu) and the main screen (màn hình chính).

Points (or delegates, for their own point) ask for the floor with an optional topic; the chair
sees the queue in request order and grants it. Granting makes that point the speaker, the main
screen every point sees, and unmutes it; revoking ends the turn and gives the main screen back
to the host point. Every turn is kept (``floor_requests``: granted_at .. ended_at), which gives
the speaking timer, the totals per point and the speakers of the minutes.

The chair also mutes/unmutes points, removes a point from the meeting and locks the meeting.

# MEDIA HOOK: the media core (media/, written separately) follows this state through events on
# ``topic(meeting_id)``: ``main_screen.changed {point_code, reason}`` → switch the HD source all
# points receive; ``point.muted {point_code, muted}`` → gate that point's audio;
# ``point.removed {point_code}`` → drop its peers. Its "set main screen" operation does not
# exist yet; when it does, subscribe to these events (or call :meth:`FloorControl.state`
# at start) — this module stays the source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .attendance import invited_point, require_not_closed
from .audit import record
from .bus import Bus
from .calendar import new_id, topic
from .clock import utcnow
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import BridgePoint, Principal
from .permissions import Action, MeetingScope, allowed
from .share import ShareControl
from .store.db import Database
from .store.tables import bridge_points, meetings, presence_log
from .store.tables_conduct import floor_requests, floor_state, point_controls
from .text import clean_line

MAX_TOPIC = 500
Reason = Literal["host", "floor", "chair", "share"]
QUEUED, SPEAKING, DONE, WITHDRAWN = "queued", "speaking", "done", "withdrawn"


@dataclass(frozen=True)
class FloorRequest:
    id: int
    point_code: str
    label: str
    topic: str
    requested_at: datetime


@dataclass(frozen=True)
class Speaker:
    request_id: int | None
    point_code: str
    label: str
    since: datetime
    topic: str


@dataclass(frozen=True)
class MainScreen:
    point_code: str | None
    label: str
    reason: Reason


@dataclass(frozen=True)
class SpeakingTotal:
    point_code: str
    label: str
    seconds: int


@dataclass(frozen=True)
class Turn:
    """One speaking turn, for the minutes."""

    point_code: str
    point_name: str
    label: str
    topic: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class FloorState:
    speaker: Speaker | None
    queue: list[FloorRequest]
    main_screen: MainScreen
    locked: bool
    muted: list[str]
    totals: list[SpeakingTotal]


_COLS = (floor_requests, bridge_points.c.code, bridge_points.c.name.label("point_name"))


def _request(row: Any) -> FloorRequest:
    return FloorRequest(row.id, row.code, row.label, row.topic, row.requested_at)


class FloorControl:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self.share = ShareControl(self)
        "Content sharing (meetings/share.py): shown on top of the main screen while it lasts."

    # ------------------------------------------------------------ reading

    async def state(self, meeting_id: int) -> FloorState:
        async with self.db.connect() as conn:
            return await self._state(conn, meeting_id)

    async def _state(self, conn: AsyncConnection, meeting_id: int) -> FloorState:
        now = utcnow()
        rows = (await conn.execute(
            sa.select(*_COLS).join(bridge_points, bridge_points.c.id == floor_requests.c.point_id)
            .where(floor_requests.c.meeting_id == meeting_id,
                   floor_requests.c.state.in_([QUEUED, SPEAKING, DONE]))
            .order_by(floor_requests.c.requested_at, floor_requests.c.id))).all()
        queue = [_request(r) for r in rows if r.state == QUEUED]
        speaker = next((Speaker(r.id, r.code, r.label, r.granted_at, r.topic)
                        for r in rows if r.state == SPEAKING), None)
        totals: dict[str, list[Any]] = {}
        for r in rows:
            if r.granted_at is not None:
                entry = totals.setdefault(r.code, [r.point_name, 0.0])
                entry[1] += ((r.ended_at or now) - r.granted_at).total_seconds()
        st = (await conn.execute(sa.select(floor_state).where(floor_state.c.meeting_id == meeting_id))).first()
        locked = bool(st.locked) if st else False
        main = await self._main_screen(conn, meeting_id, st)
        share = self.share.current(meeting_id)
        if share is not None and share.layout == "main":  # on top; floor_state keeps the floor's own
            main = MainScreen(share.point_code, share.label, "share")
        muted = sorted((await conn.execute(
            sa.select(bridge_points.c.code).join(point_controls, point_controls.c.point_id == bridge_points.c.id)
            .where(point_controls.c.meeting_id == meeting_id, point_controls.c.muted.is_(True)))).scalars())
        return FloorState(speaker, queue, main, locked, muted,
                          [SpeakingTotal(code, v[0], int(v[1])) for code, v in sorted(totals.items())])

    async def _main_screen(self, conn: AsyncConnection, meeting_id: int, st: Any) -> MainScreen:
        if st is not None and st.main_point_id is not None:
            point_id, reason = st.main_point_id, st.main_reason
        else:
            point_id = (await conn.execute(sa.select(meetings.c.host_point_id)
                                           .where(meetings.c.id == meeting_id))).scalar()
            reason = "host"
        if point_id is None:
            return MainScreen(None, "", "host")
        row = (await conn.execute(sa.select(bridge_points.c.code, bridge_points.c.name)
                                  .where(bridge_points.c.id == point_id))).first()
        return MainScreen(row.code, row.name, reason) if row else MainScreen(None, "", "host")

    async def turns(self, meeting_id: int) -> list[Turn]:
        """Every speaking turn, in the order they were given."""
        async with self.db.connect() as conn:
            rows = (await conn.execute(
                sa.select(*_COLS).join(bridge_points, bridge_points.c.id == floor_requests.c.point_id)
                .where(floor_requests.c.meeting_id == meeting_id, floor_requests.c.granted_at.is_not(None))
                .order_by(floor_requests.c.granted_at, floor_requests.c.id))).all()
        return [Turn(r.code, r.point_name, r.label, r.topic, r.granted_at, r.ended_at) for r in rows]

    async def is_locked(self, meeting_id: int) -> bool:
        async with self.db.connect() as conn:
            value = (await conn.execute(sa.select(floor_state.c.locked)
                                        .where(floor_state.c.meeting_id == meeting_id))).scalar()
        return bool(value)

    async def is_removed(self, meeting_id: int, point_id: int) -> bool:
        async with self.db.connect() as conn:
            value = (await conn.execute(sa.select(point_controls.c.removed).where(
                point_controls.c.meeting_id == meeting_id, point_controls.c.point_id == point_id))).scalar()
        return bool(value)

    async def admit(self, meeting_id: int, principal: Principal, scope: MeetingScope) -> None:
        """May ``principal`` join the meeting live? (Called by the WS hub on ``join``.)
        A removed point may not come back; a locked meeting admits its staff and those who
        were in it before (a commune link that dropped), but nobody new."""
        if allowed(principal, Action.MEETING_EDIT, scope):
            return
        point_id = principal.point.id if principal.point else None
        async with self.db.connect() as conn:
            if point_id is not None:
                removed = (await conn.execute(sa.select(point_controls.c.removed).where(
                    point_controls.c.meeting_id == meeting_id, point_controls.c.point_id == point_id))).scalar()
                if removed:
                    raise Forbidden("this point was removed from the meeting", code="point_removed",
                                    details={"reason": "point_removed"})
            locked = (await conn.execute(sa.select(floor_state.c.locked)
                                         .where(floor_state.c.meeting_id == meeting_id))).scalar()
            if not locked:
                return
            mine = [presence_log.c.user_id == principal.user.id] if principal.user else []
            if principal.user is None and point_id is not None:
                mine.append(presence_log.c.point_id == point_id)
            before = (await conn.execute(sa.select(presence_log.c.id).where(
                presence_log.c.meeting_id == meeting_id, sa.or_(*mine) if mine else sa.false()).limit(1))).first()
        if before is None:
            raise Conflict("the meeting is locked: nobody new may join", code="meeting_locked",
                           details={"reason": "meeting_locked"})

    # ------------------------------------------------------------ points ask

    async def request(self, meeting_id: int, actor: Principal, topic_text: str = "") -> FloorRequest:
        if actor.point is None:
            raise Invalid("only a bridge point, or a user attending from one, can ask for the floor",
                          code="no_point")
        text = clean_line(topic_text)
        if len(text) > MAX_TOPIC:
            raise Invalid(f"topic: longer than {MAX_TOPIC} characters", code="invalid_field", details={"field": "topic"})
        async with self.db.transaction() as conn:
            await require_not_closed(conn, meeting_id)
            point = await invited_point(conn, meeting_id, actor.point.code)
            await self._refuse_removed(conn, meeting_id, point)
            pending = (await conn.execute(sa.select(floor_requests.c.id).where(
                floor_requests.c.meeting_id == meeting_id, floor_requests.c.point_id == point.id,
                floor_requests.c.state == QUEUED))).scalar()
            if pending is not None:
                raise Conflict("this point has already asked for the floor", code="already_requested",
                               details={"request_id": pending})
            now = utcnow()
            label = actor.label if actor.user is not None else point.name
            request_id = new_id(await conn.execute(floor_requests.insert().values(
                meeting_id=meeting_id, point_id=point.id, user_id=actor.user.id if actor.user else None,
                label=label[:255], topic=text, state=QUEUED, requested_at=now)))
        await self._changed(meeting_id)
        return FloorRequest(request_id, point.code, label[:255], text, now)

    async def withdraw(self, meeting_id: int, actor: Principal, request_id: int, *, is_chair: bool) -> None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(
                sa.select(floor_requests.c.point_id, floor_requests.c.state)
                .where(floor_requests.c.id == request_id, floor_requests.c.meeting_id == meeting_id))).first()
            if row is None or row.state != QUEUED:
                raise NotFound("no such waiting floor request", code="floor_request_not_found")
            own = actor.point is not None and actor.point.id == row.point_id
            if not (own or is_chair):
                raise Forbidden("only the requester or the chair can withdraw a floor request",
                                code="forbidden")
            await conn.execute(floor_requests.update().where(floor_requests.c.id == request_id)
                               .values(state=WITHDRAWN, ended_at=utcnow()))
        await self._changed(meeting_id)

    # ------------------------------------------------------------ the chair decides

    async def grant(self, meeting_id: int, actor: Principal, *, request_id: int | None = None,
                    point_code: str | None = None) -> FloorState:
        if (request_id is None) == (point_code is None):
            raise Invalid("give request_id or point_code", code="invalid_field", details={"field": "request_id"})
        async with self.db.transaction() as conn:
            await require_not_closed(conn, meeting_id)
            now = utcnow()
            if request_id is not None:
                row = (await conn.execute(sa.select(floor_requests).where(
                    floor_requests.c.id == request_id, floor_requests.c.meeting_id == meeting_id))).first()
                if row is None or row.state != QUEUED:
                    raise NotFound("no such waiting floor request", code="floor_request_not_found")
                point_id: int = row.point_id
                reason: Reason = "floor"
            else:
                assert point_code is not None
                point = await invited_point(conn, meeting_id, point_code)
                await self._refuse_removed(conn, meeting_id, point)
                point_id, reason = point.id, "chair"
                queued = (await conn.execute(sa.select(floor_requests.c.id).where(
                    floor_requests.c.meeting_id == meeting_id, floor_requests.c.point_id == point_id,
                    floor_requests.c.state == QUEUED).order_by(floor_requests.c.id))).scalar()
                if queued is not None:  # the chair picked a point that was waiting anyway
                    request_id, reason = int(queued), "floor"
                else:
                    request_id = new_id(await conn.execute(floor_requests.insert().values(
                        meeting_id=meeting_id, point_id=point_id, user_id=None,
                        label=point.name[:255], topic="", state=QUEUED, requested_at=now)))
            await self._end_turn(conn, meeting_id, now)
            await conn.execute(floor_requests.update().where(floor_requests.c.id == request_id)
                               .values(state=SPEAKING, granted_at=now))
            await self._set_main(conn, meeting_id, point_id, reason)
            was_muted = await self._set_control(conn, meeting_id, point_id, muted=False)
            code = (await conn.execute(sa.select(bridge_points.c.code).where(bridge_points.c.id == point_id))).scalar()
            await record(conn, actor, "floor.grant", meeting_id=meeting_id, target=str(code),
                         details={"request_id": request_id, "reason": reason})
            state = await self._state(conn, meeting_id)
        if was_muted:
            await self.bus.publish(topic(meeting_id), {"type": "point.muted", "point_code": code, "muted": False})
        if await self.share.main_moved(meeting_id, str(code)):
            state = await self.state(meeting_id)
        await self._main_changed(meeting_id, state)
        await self._changed(meeting_id)
        return state

    async def grant_next(self, meeting_id: int, actor: Principal) -> FloorState:
        async with self.db.connect() as conn:
            first = (await conn.execute(sa.select(floor_requests.c.id).where(
                floor_requests.c.meeting_id == meeting_id, floor_requests.c.state == QUEUED)
                .order_by(floor_requests.c.requested_at, floor_requests.c.id).limit(1))).scalar()
        if first is None:
            raise Conflict("nobody is waiting for the floor", code="queue_empty")
        return await self.grant(meeting_id, actor, request_id=int(first))

    async def revoke(self, meeting_id: int, actor: Principal) -> FloorState:
        """End the current turn; the main screen goes back to the host point."""
        async with self.db.transaction() as conn:
            ended = await self._end_turn(conn, meeting_id, utcnow())
            if ended is None:
                raise Conflict("nobody has the floor", code="no_speaker")
            await self._set_main(conn, meeting_id, None, "host")
            await record(conn, actor, "floor.revoke", meeting_id=meeting_id, target=ended)
            state = await self._state(conn, meeting_id)
        if await self.share.main_moved(meeting_id, None):
            state = await self.state(meeting_id)
        await self._main_changed(meeting_id, state)
        await self._changed(meeting_id)
        return state

    async def set_muted(self, meeting_id: int, actor: Principal, point_code: str, muted: bool) -> None:
        async with self.db.transaction() as conn:
            point = await invited_point(conn, meeting_id, point_code)
            await self._set_control(conn, meeting_id, point.id, muted=muted)
            await record(conn, actor, "point.mute" if muted else "point.unmute", meeting_id=meeting_id,
                         target=point.code)
        await self.bus.publish(topic(meeting_id), {"type": "point.muted", "point_code": point.code, "muted": muted})
        await self._changed(meeting_id)

    async def remove(self, meeting_id: int, actor: Principal, point_code: str) -> FloorState:
        """Remove a point from the meeting: muted, its requests withdrawn, its turn ended;
        it may no longer ask for the floor or vote."""
        async with self.db.transaction() as conn:
            point = await invited_point(conn, meeting_id, point_code)
            now = utcnow()
            await conn.execute(floor_requests.update().where(
                floor_requests.c.meeting_id == meeting_id, floor_requests.c.point_id == point.id,
                floor_requests.c.state == QUEUED).values(state=WITHDRAWN, ended_at=now))
            speaking = (await conn.execute(sa.select(floor_requests.c.point_id).where(
                floor_requests.c.meeting_id == meeting_id, floor_requests.c.state == SPEAKING))).scalar()
            main_moved = speaking == point.id
            if main_moved:
                await self._end_turn(conn, meeting_id, now)
                await self._set_main(conn, meeting_id, None, "host")
            await self._set_control(conn, meeting_id, point.id, muted=True, removed=True)
            await record(conn, actor, "point.remove", meeting_id=meeting_id, target=point.code)
            state = await self._state(conn, meeting_id)
        await self.bus.publish(topic(meeting_id), {"type": "point.removed", "point_code": point.code})
        share = self.share.current(meeting_id)
        if main_moved or (share is not None and share.point_code == point.code):
            if await self.share.main_moved(meeting_id, None):
                state = await self.state(meeting_id)
            await self._main_changed(meeting_id, state)
        await self._changed(meeting_id)
        return state

    async def set_locked(self, meeting_id: int, actor: Principal, locked: bool) -> FloorState:
        async with self.db.transaction() as conn:
            await self._ensure_state_row(conn, meeting_id)
            await conn.execute(floor_state.update().where(floor_state.c.meeting_id == meeting_id)
                               .values(locked=locked))
            await record(conn, actor, "meeting.lock" if locked else "meeting.unlock", meeting_id=meeting_id)
            state = await self._state(conn, meeting_id)
        await self._changed(meeting_id)
        return state

    # ------------------------------------------------------------ helpers

    async def set_main_screen(self, meeting_id: int, actor: Principal, point_code: str) -> FloorState:
        """The chair puts an invited point on every main screen without giving it the floor
        (e.g. a district hall showing its report); the next grant or revoke replaces it."""
        async with self.db.transaction() as conn:
            await require_not_closed(conn, meeting_id)
            point = await invited_point(conn, meeting_id, point_code)
            await self._refuse_removed(conn, meeting_id, point)
            await self._set_main(conn, meeting_id, point.id, "chair")
            await record(conn, actor, "floor.main_screen", meeting_id=meeting_id, target=point.code)
            state = await self._state(conn, meeting_id)
        if await self.share.main_moved(meeting_id, state.speaker.point_code if state.speaker else None):
            state = await self.state(meeting_id)
        await self._main_changed(meeting_id, state)
        await self._changed(meeting_id)
        return state

    async def _refuse_removed(self, conn: AsyncConnection, meeting_id: int, point: BridgePoint) -> None:
        removed = (await conn.execute(sa.select(point_controls.c.removed).where(
            point_controls.c.meeting_id == meeting_id, point_controls.c.point_id == point.id))).scalar()
        if removed:
            raise Forbidden(f"point {point.code} was removed from this meeting", code="point_removed")

    async def _end_turn(self, conn: AsyncConnection, meeting_id: int, now: datetime) -> str | None:
        """End the running turn, if any; its point's code."""
        row = (await conn.execute(
            sa.select(floor_requests.c.id, bridge_points.c.code)
            .join(bridge_points, bridge_points.c.id == floor_requests.c.point_id)
            .where(floor_requests.c.meeting_id == meeting_id, floor_requests.c.state == SPEAKING))).first()
        if row is None:
            return None
        await conn.execute(floor_requests.update().where(floor_requests.c.id == row.id)
                           .values(state=DONE, ended_at=now))
        return str(row.code)

    async def _ensure_state_row(self, conn: AsyncConnection, meeting_id: int) -> None:
        have = (await conn.execute(sa.select(floor_state.c.meeting_id)
                                   .where(floor_state.c.meeting_id == meeting_id))).first()
        if have is None:
            await conn.execute(floor_state.insert().values(meeting_id=meeting_id, locked=False,
                                                           main_point_id=None, main_reason="host"))

    async def _set_main(self, conn: AsyncConnection, meeting_id: int, point_id: int | None, reason: Reason) -> None:
        await self._ensure_state_row(conn, meeting_id)
        await conn.execute(floor_state.update().where(floor_state.c.meeting_id == meeting_id)
                           .values(main_point_id=point_id, main_reason=reason))

    async def _set_control(self, conn: AsyncConnection, meeting_id: int, point_id: int, *, muted: bool,
                           removed: bool | None = None) -> bool:
        """Set a point's mute (and removal) flags; whether it was muted before."""
        key = (point_controls.c.meeting_id == meeting_id) & (point_controls.c.point_id == point_id)
        row = (await conn.execute(sa.select(point_controls).where(key))).first()
        if row is None:
            await conn.execute(point_controls.insert().values(
                meeting_id=meeting_id, point_id=point_id, muted=muted, removed=bool(removed)))
            return False
        values: dict[str, bool] = {"muted": muted}
        if removed is not None:
            values["removed"] = removed
        await conn.execute(point_controls.update().where(key).values(**values))
        return bool(row.muted)

    async def _main_changed(self, meeting_id: int, state: FloorState) -> None:
        # MEDIA HOOK: media/ subscribes to this event to switch the main (HD) source.
        await self.bus.publish(topic(meeting_id), {
            "type": "main_screen.changed", "point_code": state.main_screen.point_code,
            "label": state.main_screen.label, "reason": state.main_screen.reason})

    async def main_changed(self, meeting_id: int) -> None:
        """Tell every node the main screen (and the floor) may have changed: the share
        module calls it when a share starts, ends or changes layout."""
        await self._main_changed(meeting_id, await self.state(meeting_id))
        await self._changed(meeting_id)

    async def _changed(self, meeting_id: int) -> None:
        await self.bus.publish(topic(meeting_id), {"type": "floor.changed"})
