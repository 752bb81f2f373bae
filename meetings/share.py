"""Content sharing (chia sẻ nội dung): a participant's screen or window on the main screen.

Who may share: the meeting's staff (chair, secretary, admin: ``media.console``) and the point
that holds the floor (its device, link, or a user attending from it). One share per meeting.
The share is a *separate source* (the sharer's ``screen`` m-line); the chair chooses where it
shows: ``main`` (it takes every point's main screen; the main screen's reason is ``share``) or
``beside`` (the main screen keeps the speaker; the content goes to the ``content`` slots).

The main screen of the floor (``floor_state``) is never overwritten by a share: while a share
is shown in ``main``, :meth:`meetings.floor.FloorControl.state` reports it on top, and when it
ends, what the floor holds shows again — the previous main screen, or whatever the chair chose
meanwhile. A chair's main-screen choice, grant or revoke during a ``main`` share moves the
share ``beside`` (the chair's choice is seen); a share allowed only by the floor ends when the
floor moves to another point.

State: in memory, mirrored on every node from the ``share.changed`` events
(:meth:`ShareControl.observe`). Nothing is persisted on purpose: a share lives exactly as long
as the sharer's WebRTC peer, which a restart ends anyway. Events on ``topic(meeting_id)``:
``share.changed {meeting_id, active, session, point_code, user_id, label, layout, reason}``
and ``main_screen.changed`` (reason ``share`` while a ``main`` share shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from .attendance import require_not_closed
from .audit import record
from .calendar import topic
from .clock import isoformat, utcnow
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import Principal
from .text import clean_line

if TYPE_CHECKING:
    from .floor import FloorControl

Layout = Literal["main", "beside"]
LAYOUTS: tuple[Layout, ...] = ("main", "beside")
MAX_SESSION = 64
MAX_LABEL = 255


@dataclass(frozen=True)
class Share:
    """The meeting's current share."""

    meeting_id: int
    session: str | None
    "The sharer's WebSocket session key (its media participant id), if it named one."
    point_code: str | None
    user_id: int | None
    label: str
    layout: Layout
    via_floor: bool
    "Allowed because the sharer's point held the floor (not staff): ends with the turn."
    started_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"active": True, "session": self.session, "point_code": self.point_code,
                "label": self.label, "layout": self.layout, "via_floor": self.via_floor,
                "started_at": isoformat(self.started_at)}


def layout_of(value: Any) -> Layout:
    if value not in LAYOUTS:
        raise Invalid('layout: "main" or "beside"', code="invalid_field",
                      details={"field": "layout"})
    return value  # type: ignore[no-any-return]


class ShareControl:
    """Starts, stops and lays out the share of each meeting (owned by :class:`FloorControl`)."""

    def __init__(self, floor: FloorControl) -> None:
        self.floor = floor
        self._shares: dict[int, Share] = {}
        self._layouts: dict[int, Layout] = {}

    # ------------------------------------------------------------ reading

    def current(self, meeting_id: int) -> Share | None:
        return self._shares.get(meeting_id)

    def layout(self, meeting_id: int) -> Layout:
        """The chair's layout for the meeting's shares (``main`` until chosen)."""
        share = self._shares.get(meeting_id)
        return share.layout if share else self._layouts.get(meeting_id, "main")

    def state_json(self, meeting_id: int) -> dict[str, Any]:
        share = self._shares.get(meeting_id)
        if share is not None:
            return share.as_json()
        return {"active": False, "session": None, "point_code": None, "label": "",
                "layout": self.layout(meeting_id), "via_floor": False, "started_at": None}

    # ------------------------------------------------------------ commands

    async def start(self, meeting_id: int, actor: Principal, *, staff: bool,
                    session: str | None = None, layout: Layout | None = None) -> Share:
        """Share the caller's screen. ``staff``: the caller is the meeting's staff; others
        must be attending from the point that holds the floor (403 ``not_floor_holder``)."""
        if session is not None and (not session or len(session) > MAX_SESSION):
            raise Invalid(f"session: 1 to {MAX_SESSION} characters", code="invalid_field",
                          details={"field": "session"})
        state = await self.floor.state(meeting_id)
        point_code = actor.point.code if actor.point is not None else None
        speaking = state.speaker.point_code if state.speaker is not None else None
        via_floor = False
        if not staff:
            if point_code is None or speaking != point_code:
                raise Forbidden("only the meeting's staff and the point holding the floor "
                                "may share content", code="not_floor_holder",
                                details={"reason": "not_floor_holder"})
            via_floor = True
        user_id = actor.user.id if actor.user is not None else None
        existing = self._shares.get(meeting_id)
        if existing is not None and not (existing.user_id == user_id
                                         and existing.point_code == point_code):
            raise Conflict(f"{existing.label} is already sharing content", code="share_in_progress",
                           details={"label": existing.label, "point_code": existing.point_code})
        label = clean_line(actor.label)[:MAX_LABEL] or (point_code or "")
        share = Share(meeting_id, session, point_code, user_id, label,
                      layout or self.layout(meeting_id), via_floor, utcnow())
        async with self.floor.db.transaction() as conn:
            await require_not_closed(conn, meeting_id)
            other = self._shares.get(meeting_id)  # another start may have won meanwhile
            if other is not None and other is not existing:
                raise Conflict(f"{other.label} is already sharing content",
                               code="share_in_progress",
                               details={"label": other.label, "point_code": other.point_code})
            await record(conn, actor, "share.start", meeting_id=meeting_id, target=point_code or "",
                         details={"layout": share.layout})
        self._shares[meeting_id] = share
        await self._publish(meeting_id, "started")
        return share

    async def stop(self, meeting_id: int, actor: Principal, *, staff: bool) -> None:
        """End the share: the sharer itself or the meeting's staff."""
        share = self._shares.get(meeting_id)
        if share is None:
            raise NotFound("nobody is sharing content", code="no_share")
        user_id = actor.user.id if actor.user is not None else None
        point_code = actor.point.code if actor.point is not None else None
        if not staff and not (share.user_id == user_id and share.point_code == point_code):
            raise Forbidden("only the sharer or the meeting's staff may stop the share",
                            code="forbidden")
        async with self.floor.db.transaction() as conn:
            await record(conn, actor, "share.stop", meeting_id=meeting_id,
                         target=share.point_code or "")
        await self._end(meeting_id, "stopped")

    async def set_layout(self, meeting_id: int, actor: Principal, layout: Layout) -> dict[str, Any]:
        """The chair's choice: the share on the main screen or beside the speaker (also for
        the meeting's next shares)."""
        async with self.floor.db.transaction() as conn:
            await require_not_closed(conn, meeting_id)
            await record(conn, actor, "share.layout", meeting_id=meeting_id, target=layout)
        self._layouts[meeting_id] = layout
        share = self._shares.get(meeting_id)
        if share is not None and share.layout != layout:
            self._shares[meeting_id] = replace(share, layout=layout)
            await self._publish(meeting_id, "layout")
        return self.state_json(meeting_id)

    async def session_gone(self, meeting_id: int, session: str) -> bool:
        """The sharer's session left the meeting (or its media): the share ends."""
        share = self._shares.get(meeting_id)
        if share is None or share.session != session:
            return False
        await self._end(meeting_id, "left")
        return True

    async def main_moved(self, meeting_id: int, speaker: str | None) -> bool:
        """The floor or the chair moved the main screen (``speaker``: who holds the floor
        now). A share allowed by the floor ends when its point lost it; a ``main`` share
        moves ``beside``. True when the share changed."""
        share = self._shares.get(meeting_id)
        if share is None:
            return False
        if share.via_floor and share.point_code != speaker:
            await self._end(meeting_id, "floor", follow=False)
            return True
        if share.layout == "main":
            self._shares[meeting_id] = replace(share, layout="beside")
            await self._publish(meeting_id, "main_screen", follow=False)
            return True
        return False

    # ------------------------------------------------------------ events

    def observe(self, event: Mapping[str, Any]) -> None:
        """Mirror a ``share.changed`` event (from any node) into this node's state."""
        if event.get("type") != "share.changed" or not isinstance(event.get("meeting_id"), int):
            return
        meeting_id = int(event["meeting_id"])
        layout: Layout = next((known for known in LAYOUTS if known == event.get("layout")), "main")
        self._layouts[meeting_id] = layout
        if not event.get("active"):
            self._shares.pop(meeting_id, None)
            return
        mine = self._shares.get(meeting_id)
        if mine is not None and mine.session == event.get("session"):
            self._shares[meeting_id] = replace(mine, layout=layout)
            return
        started = utcnow()
        user_id = event.get("user_id")
        self._shares[meeting_id] = Share(
            meeting_id, event.get("session") if isinstance(event.get("session"), str) else None,
            event.get("point_code") if isinstance(event.get("point_code"), str) else None,
            user_id if isinstance(user_id, int) else None, str(event.get("label") or ""), layout,
            bool(event.get("via_floor")), started)

    async def _end(self, meeting_id: int, reason: str, *, follow: bool = True) -> None:
        if self._shares.pop(meeting_id, None) is None:
            return
        await self._publish(meeting_id, reason, follow=follow)

    async def _publish(self, meeting_id: int, reason: str, *, follow: bool = True) -> None:
        """``share.changed``, then (``follow``) ``main_screen.changed`` + ``floor.changed``;
        the floor's own commands publish those themselves."""
        share = self._shares.get(meeting_id)
        event: dict[str, Any] = {"type": "share.changed", "meeting_id": meeting_id,
                                 "reason": reason, **self.state_json(meeting_id)}
        event["user_id"] = share.user_id if share is not None else None
        await self.floor.bus.publish(topic(meeting_id), event)
        if follow:  # every main screen follows: the share on top, or what the floor holds again
            await self.floor.main_changed(meeting_id)
