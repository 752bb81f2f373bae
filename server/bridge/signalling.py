"""The agent's WebSocket session (docs/protocol.md): hello, requests with ``id``/``re``,
heartbeat pings, and resume after a dropped connection.

One :class:`SignallingSession` is one protocol session over successive sockets. Everything the
server sends that is not a reply goes to ``on_event`` (a plain callback: the agent queues it,
so a slow handler never blocks the reader that resolves replies).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from server.bridge.options import AgentError, ExitCode

log = logging.getLogger("diemcau.bridge")

#: hello errors after which retrying cannot help.
AUTH_ERRORS = frozenset({"invalid_token", "token_expired", "account_disabled", "point_disabled",
                         "meeting_closed", "forbidden", "bad_version", "not_authenticated"})


class Refused(Exception):
    """The server answered a request with ``error``."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('message')}")
        self.code = str(reply.get("code", ""))
        self.message = str(reply.get("message", ""))
        self.reply = reply


@dataclass(frozen=True)
class SessionEvent:
    """What the session tells its owner: a server ``message``, a ``reset`` (the session was
    lost and a new one opened: re-join), or ``fatal`` (stop: ``error`` says why)."""

    kind: str
    message: dict[str, Any]
    error: AgentError | None = None


class SignallingSession:
    """A protocol session that survives dropped sockets (resume with ``last_seq``)."""

    def __init__(self, url: str, token: str, on_event: Callable[[SessionEvent], None], *,
                 open_timeout_s: float = 10.0, max_backoff_s: float = 5.0, ca_file: str = "") -> None:
        self.url = url
        self.ssl = ssl.create_default_context(cafile=ca_file) if ca_file and url.startswith("wss:") else None
        self.token = token
        self.on_event = on_event
        self.open_timeout_s = open_timeout_s
        self.max_backoff_s = max_backoff_s
        self.welcome: dict[str, Any] = {}
        self.last_seq = 0
        self.resumes = 0
        self._ws: ClientConnection | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._last_sent = 0.0
        self._last_received = 0.0
        self._closing = False

    @property
    def heartbeat_s(self) -> float:
        return float(self.welcome.get("heartbeat_s", 15.0))

    @property
    def principal(self) -> dict[str, Any]:
        return dict(self.welcome.get("principal") or {})

    # --- opening -----------------------------------------------------------------------------

    async def _connect(self) -> ClientConnection:
        try:
            extra: dict[str, Any] = {"ssl": self.ssl} if self.ssl is not None else {}
            return await connect(self.url, open_timeout=self.open_timeout_s, ping_interval=None,
                                 max_size=1 << 20, close_timeout=2, **extra)
        except InvalidURI as exc:
            raise AgentError(ExitCode.USAGE, f"bad URL {self.url}: {exc}") from None

    async def _hello(self, ws: ClientConnection, **fields: Any) -> dict[str, Any]:
        await ws.send(json.dumps({"type": "hello", "v": 1, "id": "hello", **fields}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), self.open_timeout_s))
        if reply.get("type") == "error":
            raise Refused(reply)
        return dict(reply)

    async def open(self) -> dict[str, Any]:
        """Connect and say hello with the token; the ``welcome``. Raises :class:`AgentError`
        (AUTH when refused, UNREACHABLE when the server does not answer)."""
        try:
            ws = await self._connect()
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise AgentError(ExitCode.UNREACHABLE, f"cannot reach {self.url}: {exc}") from None
        try:
            self.welcome = await self._hello(ws, token=self.token)
        except Refused as exc:
            await ws.close()
            raise AgentError(ExitCode.AUTH, f"the server refused the token: {exc.message}",
                             exc.code) from None
        except (ConnectionClosed, TimeoutError) as exc:
            raise AgentError(ExitCode.UNREACHABLE, f"no welcome from {self.url}: {exc}") from None
        self._attach(ws)
        return self.welcome

    def _attach(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._last_sent = self._last_received = time.monotonic()

    # --- sending -----------------------------------------------------------------------------

    async def send(self, type_: str, **fields: Any) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionError("not connected")
        await ws.send(json.dumps({"type": type_, **fields}, ensure_ascii=False))
        self._last_sent = time.monotonic()

    async def request(self, type_: str, timeout: float = 15.0, **fields: Any) -> dict[str, Any]:
        """Send a message with an ``id`` and wait for the reply carrying it as ``re``.
        Raises :class:`Refused` for an ``error`` reply, ConnectionError if the socket drops."""
        self._next_id += 1
        rid = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await self.send(type_, id=rid, **fields)
            reply = await asyncio.wait_for(future, timeout)
        except ConnectionClosed:
            raise ConnectionError("connection lost") from None
        finally:
            self._pending.pop(rid, None)
        if reply.get("type") == "error":
            raise Refused(reply)
        return reply

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and keep the session alive until :meth:`close` or a fatal refusal."""
        while not self._closing:
            ws = self._ws
            if ws is not None:
                heartbeat = asyncio.create_task(self._heartbeat(ws))
                try:
                    await self._read(ws)
                finally:
                    heartbeat.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await heartbeat
                self._fail_pending()
            if self._closing:
                return
            if not await self._resume():
                return

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._last_received = time.monotonic()
                try:
                    msg = json.loads(raw)
                except ValueError:
                    log.warning("non-JSON frame from the server ignored")
                    continue
                if not isinstance(msg, dict):
                    continue
                if isinstance(msg.get("seq"), int):
                    self.last_seq = max(self.last_seq, msg["seq"])
                re = msg.get("re")
                future = self._pending.get(re) if isinstance(re, int) else None
                if future is not None and not future.done():
                    future.set_result(msg)
                    if msg.get("type") not in ("chat",):
                        continue
                self.on_event(SessionEvent("message", msg))
        except ConnectionClosed as exc:
            if not self._closing:
                log.warning("signalling connection lost (%s)", exc.rcvd.code if exc.rcvd else "no close frame")

    async def _heartbeat(self, ws: ClientConnection) -> None:
        """Ping when nothing was sent for ``heartbeat_s``; no answer within ``heartbeat_s`` →
        close the socket (the run loop resumes)."""
        interval = self.heartbeat_s
        while True:
            await asyncio.sleep(min(1.0, interval / 3))
            now = time.monotonic()
            if now - self._last_received > 2 * interval + 1:
                log.warning("no answer from the server for %.0f s: reconnecting", now - self._last_received)
                ws.transport.abort()
                return
            if now - self._last_sent >= interval:
                with contextlib.suppress(ConnectionClosed):
                    await self.send("ping", t=int(time.time() * 1000))

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self._ws = None

    async def _resume(self) -> bool:
        """Reconnect with ``hello {resume, last_seq, token}`` until it works; False when the
        server refuses for good (a fatal event was emitted)."""
        backoff = 0.25
        while not self._closing:
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff_s, backoff * 2)
            try:
                ws = await self._connect()
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                log.info("reconnect failed: %s", exc)
                continue
            fields: dict[str, Any] = {"token": self.token, "last_seq": self.last_seq}
            if self.welcome.get("resume_token"):
                fields["resume"] = self.welcome["resume_token"]
            try:
                reply = await self._hello(ws, **fields)
            except Refused as exc:
                await ws.close()
                if exc.code in AUTH_ERRORS:
                    error = AgentError(ExitCode.AUTH, f"reconnect refused: {exc.message}", exc.code)
                    self.on_event(SessionEvent("fatal", exc.reply, error))
                    return False
                continue
            except (ConnectionClosed, TimeoutError, ValueError):
                continue
            self.welcome = reply
            self._attach(ws)
            self.resumes += 1
            if reply.get("type") == "resumed":
                log.info("session resumed (%s missed events replayed%s)", reply.get("replayed", 0),
                         ", gap" if reply.get("gap") else "")
                self.on_event(SessionEvent("resumed", reply))
            else:
                log.info("session could not be resumed: a new session was opened")
                self.last_seq = 0
                self.on_event(SessionEvent("reset", reply))
            return True
        return False

    def drop(self) -> None:
        """Lose the socket without a close frame (tests: a cable pulled)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def close(self) -> None:
        """End the session (close code 1000: others see us leave at once). Safe twice."""
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(code=1000)
        self._fail_pending()
