"""``GET /ws``: the aiohttp handler and the per-connection protocol state machine."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web

from meetings.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
)

from ..auth import COOKIE, own_origins, resolve_token, unsign_cookie
from ..ratelimit import TokenBucket
from .connection import CLOSE_NORMAL, CLOSE_POLICY, Connection
from .hub import Hub
from .protocol import (
    ERROR_CODES,
    ClientMessage,
    Hello,
    Join,
    Leave,
    MediaCandidate,
    MediaGrid,
    MediaKeyframe,
    MediaLeave,
    MediaOffer,
    MessageId,
    Ping,
    Pong,
    ProtocolError,
    SendChat,
    encode,
    error,
    parse_client_message,
)
from .revalidate import Credential
from .session import Session

MEDIA_MESSAGES = (MediaOffer, MediaCandidate, MediaGrid, MediaKeyframe, MediaLeave)

log = logging.getLogger(__name__)

STRIKES_BEFORE_HELLO = 3
"""Refused messages (or failed hellos) tolerated before authentication; then 1008."""
FLOOD_LIMIT = 100
"""Rate-limited messages in a row that close the connection (1008)."""
QUEUE_SIZE = 1024
"""Frames a connection may have waiting to be written before it counts as a slow consumer."""


def ws_error(exc: DomainError, re: MessageId | None) -> ProtocolError:
    """Map a domain error to a protocol error code (see ``ERROR_CODES``)."""
    if isinstance(exc, Forbidden):
        code = "forbidden"
    elif isinstance(exc, NotFound):
        code = "not_found"
    elif isinstance(exc, RateLimited):
        code = "rate_limited"
    elif exc.code in ERROR_CODES:
        code = exc.code
    elif isinstance(exc, Unauthenticated):
        code = "not_authenticated"
    elif isinstance(exc, (Invalid, Conflict)):
        code = "invalid" if isinstance(exc, Invalid) else "conflict"
    else:
        code = "internal"
    return ProtocolError(code, exc.message, re=re, details=exc.details or None)


def too_large(data: str | bytes, limit: int) -> bool:
    """Whether the frame's UTF-8 size exceeds ``limit`` (encoding only when it might)."""
    if isinstance(data, bytes) or len(data) > limit:
        return len(data) > limit
    return len(data) * 4 > limit and len(data.encode("utf-8", "surrogatepass")) > limit


class Peer:
    """One connection's view of the protocol: authentication, rate limit, dispatch."""

    def __init__(self, hub: Hub, conn: Connection, request: web.Request) -> None:
        self.hub = hub
        self.conn = conn
        self.request = request
        self.session: Session | None = None
        self.strikes = 0
        self.limited = 0
        rate = hub.config.messages_per_second
        self.bucket = TokenBucket(rate=rate, burst=max(2 * rate, 5.0))

    def _reply_error(self, exc: ProtocolError, kind: str) -> None:
        self.hub.metrics.ws_messages.labels(kind, exc.code).inc()
        self.conn.send(encode(error(exc), re=exc.re))
        if self.session is None and exc.code != "rate_limited":
            self.strikes += 1
            if self.strikes >= STRIKES_BEFORE_HELLO:
                self.conn.abort(CLOSE_POLICY, "authenticate with hello first")

    async def on_frame(self, data: str | bytes) -> None:
        self.conn.last_received = time.monotonic()
        if self.session is not None and self.session.connection is not self.conn:
            return  # this socket was replaced by a resume and is being closed (4000)
        message: ClientMessage | None = None
        problem: ProtocolError | None = None
        limit = self.hub.config.max_message_bytes
        try:
            if too_large(data, limit):
                raise ProtocolError(
                    "too_large",
                    f"frames are limited to {limit} bytes",
                    details={"max_message_bytes": limit},
                )
            message = parse_client_message(data)
        except ProtocolError as exc:
            problem = exc
        kind = message.type if message is not None else "invalid"
        if not self.bucket.take():
            self.limited += 1
            if self.limited >= FLOOD_LIMIT:
                self.conn.abort(CLOSE_POLICY, "too many messages")
            re = message.id if message is not None else (problem.re if problem else None)
            self._reply_error(
                ProtocolError(
                    "rate_limited",
                    f"at most {self.hub.config.messages_per_second:g} messages per second",
                    re=re,
                ),
                kind,
            )
            return
        self.limited = 0
        if problem is not None:
            self._reply_error(problem, kind)
            return
        assert message is not None
        try:
            await self._dispatch(message)
        except ProtocolError as exc:
            self._reply_error(exc, kind)
        except DomainError as exc:
            self._reply_error(ws_error(exc, message.id), kind)
        except Exception:
            log.exception("signalling: %s from %s failed", kind, self.conn.peer)
            self._reply_error(ProtocolError("internal", "internal error", re=message.id), kind)
        else:
            self.hub.metrics.ws_messages.labels(kind, "ok").inc()

    async def _dispatch(self, message: ClientMessage) -> None:
        if isinstance(message, Hello):
            await self._hello(message)
            return
        session = self.session
        if session is None:
            raise ProtocolError("not_authenticated", "send hello first", re=message.id)
        if isinstance(message, Join):
            await self.hub.rooms.join(session, message.meeting_id, message.id)
        elif isinstance(message, Leave):
            await self.hub.rooms.leave(session, message.id)
        elif isinstance(message, SendChat):
            await self.hub.rooms.chat(session, message.text, message.id)
        elif isinstance(message, Ping):
            self.conn.send(encode(Pong(message.t), re=message.id))
        elif isinstance(message, MEDIA_MESSAGES):
            from ..media_service import media_of

            await media_of(self.request.app, message.id).handle(session, message)
        else:  # pragma: no cover - CLIENT_MESSAGES and this dispatch are kept in step
            raise ProtocolError("unknown_type", f"no handler for {message.type}", re=message.id)

    async def _hello(self, hello: Hello) -> None:
        if self.session is not None:
            raise ProtocolError("already_authenticated", "hello was already accepted", re=hello.id)
        resume_error = None
        refused: ProtocolError | None = None  # the resume was refused: session_ended
        if hello.resume is not None:
            try:
                self.session = await self.hub.resume(
                    hello.resume, self.conn, last_seq=hello.last_seq, re=hello.id
                )
            except ProtocolError as exc:
                if exc.code != "session_ended":
                    raise
                refused, resume_error = exc, exc.code
            else:
                if self.session is not None:
                    return
                resume_error = "resume_expired"
        token = hello.token
        if token is None:
            token = self._cookie_token(hello.id)
            if token is None:
                if refused is not None:
                    raise refused
                if resume_error:
                    raise ProtocolError(
                        "resume_expired",
                        "the session cannot be resumed; send hello with a token",
                        re=hello.id,
                    )
                raise ProtocolError(
                    "not_authenticated", "hello needs a token (or the session cookie)", re=hello.id
                )
        try:
            principal = await resolve_token(self.hub.services, token)
        except Unauthenticated:
            if refused is not None:  # the same spent credential: say why the session ended
                raise refused from None
            raise
        self.session = self.hub.open_session(
            principal, self.conn, re=hello.id, resume_error=resume_error,
            credential=Credential.of(token),
        )

    def _cookie_token(self, re: MessageId | None) -> str | None:
        raw = self.request.cookies.get(COOKIE)
        if not raw:
            return None
        token = unsign_cookie(self.hub.services.secret, raw)
        if token is None:
            raise Unauthenticated("forged session cookie", code="invalid_token")
        origin = self.request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in own_origins(self.request):
            raise Forbidden("cross-origin WebSocket refused (cookie authentication)")
        return token


async def websocket(request: web.Request) -> web.StreamResponse:
    """The ``/ws`` endpoint (see docs/protocol.md)."""
    from . import HUB

    hub = request.app[HUB]
    if hub.closing:
        raise web.HTTPServiceUnavailable(text="shutting down")
    config = hub.config
    # aiohttp closes with 1009 above twice the limit; between 1x and 2x we answer too_large.
    ws = web.WebSocketResponse(
        heartbeat=config.heartbeat_s, max_msg_size=2 * config.max_message_bytes
    )
    await ws.prepare(request)
    conn = Connection(ws, request, queue_size=QUEUE_SIZE)
    peer = Peer(hub, conn, request)
    hub.connections.add(conn)
    hub.metrics.ws_connections.inc()
    clean = False
    try:
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await peer.on_frame(msg.data)
                continue
            if msg.type is WSMsgType.CLOSE:
                clean = msg.data == CLOSE_NORMAL and conn.server_close is None
            elif msg.type is WSMsgType.ERROR:
                log.info("WebSocket %s: %s", conn.peer, msg.data)
            break
    finally:
        hub.metrics.ws_connections.dec()
        # The hub owns the cleanup: aiohttp may cancel this handler once the peer is gone.
        await asyncio.shield(hub.release(conn, peer.session, clean=clean))
    return ws
