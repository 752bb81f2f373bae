"""The signalling hub of one node: sessions, resume windows, the watchdog, shutdown.

The hub owns every task it starts (connection releases, resume-window timers, meeting-close
sweeps, the silence watchdog; room relays through :class:`Rooms`) and cancels and awaits them
in :meth:`close`. Meeting membership, presence and chat live in :class:`Rooms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from meetings.models import Principal
from meetings.presence import PresenceStore

from ..metrics import Metrics
from ..services import Services
from .connection import CLOSE_GOING_AWAY, CLOSE_REPLACED, CLOSE_SILENT, Connection
from .protocol import PROTOCOL_VERSION, MessageId, Resumed, Welcome, stamp
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
        self.resume_hooks: list[Callable[[Session], None]] = []
        """Called after a session resumed on a new connection (the media service re-sends
        the session's unsequenced media state there)."""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.rooms.presence.start()
        if self.services.config.bus.backend == "memory":  # the only node: open rows are stale
            await quietly(self.rooms.presence_log.close_dangling(), "closing stale presence rows")
        self._watchdog = asyncio.create_task(self._watch(), name="ws-watchdog")

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
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
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
                     resume_error: str | None = None) -> Session:
        session = Session(principal, conn)
        self.sessions[session.key] = session
        self._by_resume[session.resume_token] = session
        c = self.config
        session.reply(Welcome(PROTOCOL_VERSION, session.key, session.resume_token, c.heartbeat_s,
                              c.resume_window_s, self.limits(), principal_json(principal),
                              resume_error), re)
        return session

    async def resume(self, token: str, conn: Connection, *, last_seq: int | None,
                     re: MessageId | None) -> Session | None:
        """Re-attach the session of ``token`` to ``conn``; None when unknown or expired."""
        session = self._by_resume.get(token)
        if session is None or session.state is SessionState.GONE:
            return None
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
