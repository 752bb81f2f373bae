"""The signalling hub of one node: sessions, resume windows, the watchdog, shutdown.

The hub owns every task it starts (connection releases, resume-window timers, meeting-close
sweeps, the silence watchdog, the session revalidation rounds and the sessions they end; room
relays through :class:`Rooms`) and cancels and awaits them in :meth:`close`. Meeting
membership, presence and chat live in :class:`Rooms`; revalidation rules in ``revalidate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from meetings.bus import Subscription
from meetings.models import Principal
from meetings.permissions import Action, allowed
from meetings.presence import PresenceStore

from ..metrics import Metrics
from ..services import Services
from . import revalidate
from .connection import CLOSE_GOING_AWAY, CLOSE_REPLACED, CLOSE_SILENT, Connection
from .protocol import (
    PROTOCOL_VERSION,
    MessageId,
    ProtocolError,
    Resumed,
    SessionEnded,
    Welcome,
    stamp,
)
from .revalidate import CLOSE_SESSION_ENDED, Credential, Verdict
from .rooms import Rooms, quietly
from .session import Session, SessionState

log = logging.getLogger(__name__)
SILENT_HEARTBEATS = 3


def principal_json(principal: Principal) -> dict[str, Any]:
    user, point = principal.user, principal.point
    return {
        "kind": principal.kind, "label": principal.label, "meeting_id": principal.meeting_id,
        "user": None if user is None else
        {"username": user.username, "display_name": user.display_name, "role": user.role.value},
        "point": None if point is None else
        {"code": point.code, "name": point.name, "level": point.level.value},
    }


class Hub:
    def __init__(self, services: Services, *, presence: PresenceStore, metrics: Metrics,
                 node_id: str | None = None) -> None:
        self.services = services
        self.config = services.config.signalling
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.metrics = metrics
        self.rooms = Rooms(services, presence=presence, metrics=metrics, node_id=self.node_id,
                           spawn=self._spawn)
        self.connections: set[Connection] = set()
        self.sessions: dict[str, Session] = {}
        self.closing = False
        self._by_resume: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._releases: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._revalidator: asyncio.Task[None] | None = None
        self._withdrawals: asyncio.Task[None] | None = None
        self._ended: dict[str, tuple[Verdict, float]] = {}
        """Resume tokens of sessions the server ended (revalidation), kept for the resume
        window so a resume is refused with ``session_ended`` rather than ``resume_expired``."""
        self.rooms.event_hooks.append(self._on_room_event)
        self.resume_hooks: list[Callable[[Session], None]] = []
        """Called after a session resumed on a new connection (the media service re-sends
        the session's unsequenced media state there)."""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.rooms.presence.start()
        if self.services.config.bus.backend == "memory":  # the only node: open rows are stale
            await quietly(self.rooms.presence_log.close_dangling(), "closing stale presence rows")
        self._watchdog = asyncio.create_task(self._watch(), name="ws-watchdog")
        if self.config.revalidate_s > 0:
            self._revalidator = asyncio.create_task(self._revalidate(), name="ws-revalidate")
        withdrawals = await self.services.bus.subscribe(revalidate.CREDENTIALS_TOPIC)
        self._withdrawals = asyncio.create_task(self._on_withdrawals(withdrawals),
                                                name="ws-credentials")

    async def shutdown(self) -> None:
        """``on_shutdown``: refuse new sockets and close every open one with GOING_AWAY."""
        self.closing = True
        conns = list(self.connections)
        for conn in conns:
            conn.abort(CLOSE_GOING_AWAY, "server shutdown")
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    async def close(self) -> None:
        """Cleanup: end every session (others see them leave), stop rooms and tasks."""
        self.closing = True
        for task in (self._watchdog, self._revalidator, self._withdrawals):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._releases:  # handlers that just ended: let them finish their own cleanup
            await asyncio.wait(set(self._releases), timeout=5.0)
        timeout = self.services.config.server.shutdown_timeout_s
        try:  # others must see these sessions leave, but a dead store must not hang shutdown
            await asyncio.wait_for(self._finalize_all("shutdown"), timeout)
        except TimeoutError:
            log.error("signalling: %d sessions not ended before the shutdown timeout",
                      len(self.sessions))
        await self._cancel_tasks()
        leftover = list(self.connections)
        await asyncio.gather(*(c.close(CLOSE_GOING_AWAY, "server shutdown") for c in leftover),
                             return_exceptions=True)
        await self.rooms.close()
        await self.rooms.presence.close()

    async def _finalize_all(self, reason: str) -> None:
        for session in list(self.sessions.values()):
            await self._finalize(session, reason)

    async def _cancel_tasks(self) -> None:
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("signalling task %s failed", task.get_name(), exc_info=task.exception())

    async def _watch(self) -> None:
        period = self.config.heartbeat_s / 2
        limit = self.config.heartbeat_s * SILENT_HEARTBEATS
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self.connections):
                if now - conn.last_received > limit:
                    conn.abort(CLOSE_SILENT, "nothing received for three heartbeats", flush=False)

    # ------------------------------------------------------------ sessions

    def limits(self) -> dict[str, Any]:
        c = self.config
        return {"max_message_bytes": c.max_message_bytes,
                "messages_per_second": c.messages_per_second,
                "chat_max_chars": c.chat_max_chars, "chat_history": c.chat_history}

    def open_session(self, principal: Principal, conn: Connection, *, re: MessageId | None,
                     resume_error: str | None = None,
                     credential: Credential | None = None) -> Session:
        session = Session(principal, conn, credential=credential)
        self.sessions[session.key] = session
        self._by_resume[session.resume_token] = session
        c = self.config
        session.reply(Welcome(PROTOCOL_VERSION, session.key, session.resume_token, c.heartbeat_s,
                              c.resume_window_s, self.limits(), principal_json(principal),
                              resume_error), re)
        return session

    async def resume(self, token: str, conn: Connection, *, last_seq: int | None,
                     re: MessageId | None) -> Session | None:
        """Re-attach the session of ``token`` to ``conn``; None when unknown or expired.

        The session is re-authenticated first (its credential, its meeting): when that fails
        it ends (others see it leave) and ``session_ended`` is raised."""
        session = self._by_resume.get(token)
        if session is None or session.state is SessionState.GONE:
            self._not_resumable(token, re)
            return None
        verdict = await revalidate.check_resume(self.services, session)
        if self._by_resume.get(token) is not session or session.state is SessionState.GONE:
            self._not_resumable(token, re)  # taken by another resume, or ended, meanwhile
            return None
        if verdict is not None:
            await self.end_session(session, verdict)
            raise self.ended_error(verdict, re)
        # Synchronous until the replay is queued, so no live event can overtake it.
        old = session.detach()
        if old is not None:
            old.abort(CLOSE_REPLACED, "resumed on a newer connection", flush=False)
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        del self._by_resume[token]
        session.attach(conn)
        self._by_resume[session.resume_token] = session
        missed = session.missed_since(session.sent_seq if last_seq is None else last_seq)
        gap = missed is None and session.meeting_id is not None
        if gap:
            session.pending = []
        c = self.config
        session.reply(Resumed(PROTOCOL_VERSION, session.key, session.resume_token, c.heartbeat_s,
                              c.resume_window_s, self.limits(), principal_json(session.principal),
                              session.meeting, len(missed or ()), gap), re)
        for seq, body, sender_re in missed or ():
            conn.send(stamp(body, seq=seq, re=sender_re), seq)
        for hook in list(self.resume_hooks):
            try:
                hook(session)
            except Exception:
                log.exception("signalling: resume hook failed")
        if gap:
            await self._resnapshot(session)
        return session

    async def _resnapshot(self, session: Session) -> None:
        async with session.lock:
            try:
                if session.meeting_id is not None:
                    meeting = await self.services.calendar.get(session.meeting_id)
                    await self.rooms.snapshot(session, meeting, None)
            finally:
                if session.pending is not None:  # the snapshot failed: deliver unfiltered
                    session.go_live(set(), 0)

    def release(self, conn: Connection, session: Session | None, *,
                clean: bool) -> asyncio.Task[None]:
        """The handler is done with ``conn``: close it and detach or end its session."""
        task = self._spawn(self._release(conn, session, clean), f"ws-release {conn.peer}")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        return task

    async def _release(self, conn: Connection, session: Session | None, clean: bool) -> None:
        try:
            await conn.close()
            if session is not None:
                await self.connection_lost(session, conn, clean=clean)
        finally:
            self.connections.discard(conn)

    async def connection_lost(self, session: Session, conn: Connection, *, clean: bool) -> None:
        """The socket is gone: detach for the resume window, or end the session."""
        if session.connection is not conn:
            return  # already re-attached to a newer connection
        session.detach()
        if session.state is SessionState.GONE:
            return  # ended meanwhile (revalidation): nothing to wait for
        if clean or self.closing or self.config.resume_window_s <= 0:
            reason = "left" if clean else "shutdown" if self.closing else "disconnected"
            await self._finalize(session, reason)
            return
        session.state = SessionState.DETACHED
        session.expiry = self._spawn(self._expire_later(session), f"ws-expiry {session.key}")

    async def _expire_later(self, session: Session) -> None:
        await asyncio.sleep(self.config.resume_window_s)
        if session.state is SessionState.DETACHED:
            session.expiry = None
            await self._finalize(session, "timeout")

    async def _finalize(self, session: Session, reason: str) -> None:
        if session.state is SessionState.GONE:
            return
        session.state = SessionState.GONE
        self.sessions.pop(session.key, None)
        self._by_resume.pop(session.resume_token, None)
        if session.expiry is not None and session.expiry is not asyncio.current_task():
            session.expiry.cancel()
        session.expiry = None
        async with session.lock:
            await self.rooms.remove(session, reason)

    # ------------------------------------------------------------ revalidation (revalidate.py)

    def _not_resumable(self, token: str, re: MessageId | None) -> None:
        """``token`` resumes nothing: ``session_ended`` when the server ended its session."""
        ended = self._ended.get(token)
        if ended is not None:
            raise self.ended_error(ended[0], re)

    @staticmethod
    def ended_error(verdict: Verdict, re: MessageId | None) -> ProtocolError:
        return ProtocolError(
            "session_ended", f"the session was ended ({verdict.reason}); log in or join again",
            re=re, details={"reason": verdict.reason, "code": verdict.code})

    async def end_session(self, session: Session, verdict: Verdict) -> None:
        """End ``session`` for good: ``session.ended``, close 4003, leave its meeting."""
        if session.state is SessionState.GONE:
            return
        self._forget_ended()
        self._ended[session.resume_token] = (verdict, time.monotonic() + self.config.resume_window_s)
        log.info("signalling: ending session %s (%s)", session.key, verdict.reason)
        # Leave first, still attached, so the leave hooks' last words (media.closed) reach it.
        await self._finalize(session, verdict.reason)
        session.reply(SessionEnded(verdict.reason, verdict.code))
        conn = session.detach()
        if conn is not None:
            conn.abort(CLOSE_SESSION_ENDED, f"session ended: {verdict.reason}")

    def _end_soon(self, session: Session, verdict: Verdict) -> asyncio.Task[None]:
        """End a session in an owned task that :meth:`close` lets finish (like a release)."""
        task = self._spawn(self.end_session(session, verdict), f"ws-end {session.key}")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        return task

    def _forget_ended(self) -> None:
        now = time.monotonic()
        for token in [t for t, (_, until) in self._ended.items() if until <= now]:
            del self._ended[token]

    async def _revalidate(self) -> None:
        while True:
            await asyncio.sleep(self.config.revalidate_s)
            try:
                await self.revalidate_once()
            except Exception:
                log.exception("signalling: session revalidation failed")

    async def _on_withdrawals(self, subscription: Subscription) -> None:
        """``credentials.withdrawn`` from any node: a round now (events that arrived during a
        round are covered by the next one, so a burst costs at most two rounds)."""
        try:
            while await subscription.get() is not None:
                while subscription.pending():
                    await subscription.get()
                try:
                    await self.revalidate_once()
                except Exception:
                    log.exception("signalling: session revalidation after a withdrawal failed")
        finally:
            await subscription.close()

    async def revalidate_once(self) -> int:
        """One round: every session's credential in one query; end those no longer valid."""
        self._forget_ended()
        sessions = [s for s in self.sessions.values() if s.state is not SessionState.GONE]
        ended = await revalidate.check_credentials(self.services, sessions)
        tasks = [self._end_soon(session, verdict) for session, verdict in ended.items()]
        if tasks:
            await asyncio.wait(tasks)
        return len(tasks)

    def _on_room_event(self, meeting_id: int, event: Mapping[str, Any]) -> None:
        """A bus event of a meeting with local sessions (every node gets it)."""
        if event.get("type") == "point.removed" and isinstance(event.get("point_code"), str):
            self._spawn(self._kick_removed(meeting_id, str(event["point_code"])),
                        f"ws-kick {meeting_id}")
        elif event.get("type") == "invitations.changed" and "invited" not in event:
            self._spawn(self._kick_uninvited(meeting_id), f"ws-uninvited {meeting_id}")

    async def _kick_uninvited(self, meeting_id: int) -> None:
        """A point was uninvited: end the local sessions the meeting no longer admits."""
        room = self.rooms.active.get(meeting_id)
        if room is None or not room.sessions:
            return
        scope = await self.services.calendar.scope(meeting_id)
        room = self.rooms.active.get(meeting_id)
        targets = revalidate.uninvited_sessions(list(room.sessions) if room else [], scope)
        tasks = [self._end_soon(s, revalidate.NOT_INVITED) for s in targets]
        if tasks:
            await asyncio.wait(tasks)

    async def _kick_removed(self, meeting_id: int, point_code: str) -> None:
        """The chair removed ``point_code``: its sessions in the meeting end (staff stay)."""
        room = self.rooms.active.get(meeting_id)
        targets = revalidate.removed_sessions(list(room.sessions) if room else [], point_code)
        if not targets:
            return
        scope = await self.services.calendar.scope(meeting_id)
        tasks = [self._end_soon(s, revalidate.POINT_REMOVED) for s in targets
                 if not allowed(s.principal, Action.MEETING_EDIT, scope)]
        if tasks:
            await asyncio.wait(tasks)
