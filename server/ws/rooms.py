"""The meeting rooms of one node: joining, leaving, chat, and the presence they leave behind.

A session enters a :class:`Room` (one bus subscription per meeting with local sessions), is
recorded in the shared :class:`PresenceStore` and in ``presence_log``, and announces itself on
the bus; every node's room relays that to its own sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

from meetings.calendar import topic
from meetings.chat import MeetingChat
from meetings.errors import Conflict
from meetings.models import Meeting, MeetingState
from meetings.permissions import Action, MeetingScope, require
from meetings.presence import PresenceEntry, PresenceLog, PresenceStore

from ..metrics import Metrics
from ..services import Services
from . import admission
from .protocol import Joined, Left, MessageId, ProtocolError
from .room import ADMISSION_REFUSED, CHAT_MESSAGE, PRESENCE_JOINED, PRESENCE_LEFT, Room
from .session import Session, SessionState

log = logging.getLogger(__name__)
Spawn = Callable[[Awaitable[None], str], "asyncio.Task[None]"]


async def quietly(work: Awaitable[Any], what: str) -> None:
    """Best effort for cleanup steps: a failing store must not stop the rest."""
    try:
        await work
    except Exception:
        log.exception("signalling: %s failed", what)


def meeting_json(meeting: Meeting) -> dict[str, Any]:
    return {"id": meeting.id, "title": meeting.title, "state": meeting.state.value}


class Rooms:
    """Meeting membership of this node's sessions (the hub owns the sessions themselves)."""

    def __init__(self, services: Services, *, presence: PresenceStore, metrics: Metrics,
                 node_id: str, spawn: Spawn) -> None:
        self.services = services
        self.config = services.config.signalling
        self.presence = presence
        self.presence_log = PresenceLog(services.db)
        self.chat_log = MeetingChat(services.db, max_chars=self.config.chat_max_chars)
        self.metrics = metrics
        self.node_id = node_id
        self.active: dict[int, Room] = {}
        """Rooms by meeting id: meetings with at least one local session (even detached)."""
        self._lock = asyncio.Lock()
        self._admitting = asyncio.Lock()
        """Serialises the admission check with the presence entry it leads to (this node)."""
        self._spawn = spawn
        self.leave_hooks: list[Callable[[Session, int, str], Awaitable[None]]] = []
        """Called (best effort) when a session leaves a meeting: ``(session, meeting_id,
        reason)``; the media service closes the session's peer there."""
        self.event_hooks: list[Callable[[int, Mapping[str, Any]], None]] = []
        """Called (synchronously) with every bus event of a meeting with local sessions: the
        hub ends the sessions of a point the chair removed (``point.removed``) or uninvited."""

    async def close(self) -> None:
        async with self._lock:
            rooms, self.active = list(self.active.values()), {}
        for room in rooms:
            await room.close()

    # ------------------------------------------------------------ commands

    async def join(self, session: Session, meeting_id: int, re: MessageId | None) -> None:
        scope = await self.services.calendar.scope(meeting_id)
        require(session.principal, Action.MEETING_JOIN, scope)
        if scope.meeting.state is MeetingState.CLOSED:
            raise Conflict("the meeting is closed", code="meeting_closed")
        await self.services.floor.admit(meeting_id, session.principal, scope)  # removed points, lock
        async with session.lock:
            if session.state is SessionState.GONE:
                return
            if session.meeting_id == meeting_id:  # a repeated join: a fresh snapshot, no news
                await self.snapshot(session, scope.meeting, re)
                return
            async with self._admitting:
                refusal = await self._admission(session, scope, meeting_id)
                if refusal is None:
                    if session.meeting_id is not None:
                        await self.remove(session, "switched")
                    await self._enter(meeting_id, session)
                    entry = PresenceEntry.for_principal(session.key, session.principal,
                                                        node_id=self.node_id)
                    session.entry = entry
                    try:
                        await self.presence.add(meeting_id, entry)
                    except BaseException:
                        await self.remove(session, "error", announce=False)
                        raise
            if refusal is not None:
                await self._refuse(session, meeting_id, refusal, re)
            try:
                session.log_id = await self.presence_log.joined(meeting_id, entry,
                                                                session.principal)
                await self.snapshot(session, scope.meeting, re)
                await self.services.bus.publish(topic(meeting_id), {
                    "type": PRESENCE_JOINED, "meeting_id": meeting_id,
                    "participant": entry.participant(),
                })
            except BaseException:
                await self.remove(session, "error", announce=False)
                raise

    async def _admission(self, session: Session, scope: MeetingScope,
                         meeting_id: int) -> admission.Refusal | None:
        """Admission control: the meeting's cap (shared presence) and this node's cap."""
        meeting_cap = self.config.max_participants_per_meeting
        node_cap = self.config.max_connections_per_node
        if meeting_cap <= 0 and node_cap <= 0:
            return None
        meeting_count = 0
        if meeting_cap > 0:  # a resumed or switching session is never counted against itself
            entries = await self.presence.list(meeting_id)
            joining = PresenceEntry.for_principal(session.key, session.principal,
                                                  node_id=self.node_id)
            meeting_count = admission.count_others(entries, joining)
        node_count = sum(len(room.sessions - {session}) for room in self.active.values())
        return admission.decide(
            meeting_count=meeting_count, meeting_cap=meeting_cap, node_count=node_count,
            node_cap=node_cap, priority=admission.has_priority(session.principal, scope))

    async def _refuse(self, session: Session, meeting_id: int, refusal: admission.Refusal,
                      re: MessageId | None) -> NoReturn:
        """Record a refused join (audit log, ``admission.refused`` for the chair), then raise."""
        principal = session.principal
        point_code = principal.point.code if principal.point else None
        target = principal.user.username if principal.user else (point_code or "")
        details = {"reason": refusal.reason, "cap": refusal.cap}
        self.metrics.admission_refused.labels(refusal.reason).inc()
        await quietly(self.services.audit.record(
            principal, "meeting.join_refused", meeting_id=meeting_id, target=target,
            details=details), "audit of a refused join")
        await quietly(self.services.bus.publish(topic(meeting_id), {
            "type": ADMISSION_REFUSED, "meeting_id": meeting_id, "label": principal.label,
            "point_code": point_code, "reason": refusal.reason, "cap": refusal.cap,
        }), "admission publish")
        what = "meeting" if refusal.reason == admission.MEETING_FULL else "server node"
        raise ProtocolError(refusal.reason, f"this {what} is full ({refusal.cap} connections)",
                            re=re, details={"cap": refusal.cap})

    async def snapshot(self, session: Session, meeting: Meeting, re: MessageId | None) -> None:
        """Send ``joined`` (presence + recent chat), then what arrived meanwhile."""
        if session.pending is None:
            session.pending = []
        entries = await self.presence.list(meeting.id)
        history = await self.chat_log.recent(meeting.id, self.config.chat_history)
        session.meeting = meeting_json(meeting)
        presence = [e.participant() for e in entries]
        chat = [m.as_json() for m in history]
        session.reply(Joined(session.meeting, {"key": session.key}, presence, chat), re)
        session.go_live({e.key for e in entries}, max((m.id for m in history), default=0))

    async def leave(self, session: Session, re: MessageId | None) -> None:
        async with session.lock:
            meeting_id = session.meeting_id
            if meeting_id is None:
                raise ProtocolError("not_joined", "this session is not in a meeting", re=re)
            await self.remove(session, "left")
        session.reply(Left(meeting_id, "left"), re)

    async def remove(self, session: Session, reason: str, *, announce: bool = True) -> bool:
        """Take ``session`` out of its meeting (the caller holds ``session.lock``)."""
        meeting_id, entry, log_id = session.meeting_id, session.entry, session.log_id
        if meeting_id is None:
            return False
        session.meeting_id = session.entry = session.log_id = session.meeting = None
        session.pending = None
        room = self.active.get(meeting_id)
        if room is not None:
            room.sessions.discard(session)
        try:
            for hook in list(self.leave_hooks):
                await quietly(hook(session, meeting_id, reason), "leave hook")
            await quietly(self.presence.remove(meeting_id, session.key), "presence remove")
            if log_id is not None:
                await quietly(self.presence_log.left(log_id), "presence log")
            if announce and entry is not None:
                await quietly(self.services.bus.publish(topic(meeting_id), {
                    "type": PRESENCE_LEFT, "meeting_id": meeting_id,
                    "participant": entry.participant(), "reason": reason,
                }), "presence publish")
        finally:
            await self._release(meeting_id)
        return True

    async def chat(self, session: Session, text: str, re: MessageId | None) -> None:
        meeting_id = session.meeting_id
        if meeting_id is None:
            raise ProtocolError("not_joined", "join a meeting before chatting", re=re)
        self.chat_log.clean(text)  # refuse empty or too long text before touching the database
        scope = await self.services.calendar.scope(meeting_id)
        require(session.principal, Action.CHAT_SEND, scope)
        if scope.meeting.state is MeetingState.CLOSED:
            raise Conflict("the meeting is closed", code="meeting_closed")
        message = await self.chat_log.post(meeting_id, session.principal, text)
        await self.services.bus.publish(topic(meeting_id), {
            "type": CHAT_MESSAGE, "meeting_id": meeting_id, "message": message.as_json(),
            "session": session.key, "re": re,
        })

    # ------------------------------------------------------------ rooms

    async def _enter(self, meeting_id: int, session: Session) -> None:
        async with self._lock:
            room = self.active.get(meeting_id)
            if room is None:
                subscription = await self.services.bus.subscribe(topic(meeting_id))
                room = Room(meeting_id, subscription, on_event=self._on_event)
                self.active[meeting_id] = room
            session.pending = []  # events from now on wait for the snapshot
            session.meeting_id = meeting_id
            room.sessions.add(session)
            self._count(meeting_id, len(room.sessions))

    async def _release(self, meeting_id: int) -> None:
        async with self._lock:
            room = self.active.get(meeting_id)
            if room is None:
                return
            self._count(meeting_id, len(room.sessions))
            if room.sessions:
                return
            del self.active[meeting_id]
        await room.close()

    def _count(self, meeting_id: int, sessions: int) -> None:
        gauge = self.metrics.meeting_participants
        if sessions:
            gauge.labels(str(meeting_id)).set(sessions)
        else:
            with contextlib.suppress(KeyError):
                gauge.remove(str(meeting_id))

    def _on_event(self, meeting_id: int, event: Mapping[str, Any]) -> None:
        self.metrics.bus_events.inc()
        for hook in list(self.event_hooks):
            try:
                hook(meeting_id, event)
            except Exception:
                log.exception("signalling: event hook failed")
        if event.get("type") != "meeting.state":
            return
        room = self.active.get(meeting_id)
        for session in list(room.sessions if room else ()):
            if session.meeting is not None:
                session.meeting = {**session.meeting, "state": event.get("state")}
        if event.get("state") == MeetingState.CLOSED.value:
            self._spawn(self._close_meeting(meeting_id), f"ws-close-meeting {meeting_id}")

    async def _close_meeting(self, meeting_id: int) -> None:
        """The meeting closed: every local session leaves it (each node does its own)."""
        room = self.active.get(meeting_id)
        for session in list(room.sessions if room else ()):
            async with session.lock:
                if session.meeting_id == meeting_id:
                    await self.remove(session, "meeting_closed", announce=False)
                    session.reply(Left(meeting_id, "meeting_closed"))
