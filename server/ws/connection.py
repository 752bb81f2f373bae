"""One WebSocket connection: a bounded send queue drained by a writer task it owns.

Nothing ever awaits a client's socket except this writer: a hall PC on a weak link that stops
reading fills only its own queue, and is then closed (``4001 slow consumer``) instead of
holding anyone else back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

log = logging.getLogger(__name__)

# Close codes (documented in docs/protocol.md).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server shutdown
CLOSE_POLICY = 1008  # not authenticated in time, or flooding
CLOSE_TOO_BIG = 1009  # a frame larger than twice max_message_bytes (closed by aiohttp)
CLOSE_SEND_FAILED = 1011  # writing to the socket failed
CLOSE_REPLACED = 4000  # the session was resumed on a newer connection
CLOSE_SLOW = 4001  # the client did not read its messages fast enough
CLOSE_SILENT = 4002  # nothing received for three heartbeats

_END = ("", None)


class Connection:
    """Owns ``ws`` writes: :meth:`send` never blocks, :meth:`close` is safe to call twice."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        queue_size: int = 256,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.ws = ws
        self.peer = request.remote or "?"
        self._transport = request.transport
        self._queue: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue(queue_size)
        self._close_timeout_s = close_timeout_s
        self.last_received = time.monotonic()
        """When the last frame arrived (the watchdog drops connections silent too long)."""
        self.sent_seq = 0
        """The highest ``seq`` this connection wrote to the socket."""
        self.server_close: tuple[int, str] | None = None
        """The code and reason when the server closed the connection, else None."""
        self._closer: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] = asyncio.create_task(
            self._write_loop(), name=f"ws-writer {self.peer}"
        )

    @property
    def closing(self) -> bool:
        return self._closer is not None or self.ws.closed

    def send(self, frame: str, seq: int | None = None) -> bool:
        """Queue one frame; a full queue closes the connection as a slow consumer."""
        if self.closing:
            return False
        try:
            self._queue.put_nowait((frame, seq))
        except asyncio.QueueFull:
            log.warning(
                "closing slow WebSocket consumer %s (%d frames queued)",
                self.peer,
                self._queue.qsize(),
            )
            self.abort(CLOSE_SLOW, "slow consumer", flush=False)
            return False
        return True

    async def _write_loop(self) -> None:
        while True:
            frame, seq = await self._queue.get()
            if frame == "":
                return
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError) as exc:
                log.info("WebSocket %s: send failed: %s", self.peer, exc)
                self.abort(CLOSE_SEND_FAILED, "send failed", flush=False)
                return
            if seq is not None:
                self.sent_seq = seq

    def abort(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Start closing from synchronous code (the task is owned and awaited by :meth:`close`)."""
        if self._closer is None:
            self.server_close = (code, reason)
            self._closer = asyncio.create_task(
                self._close(code, reason, flush), name=f"ws-close {self.peer}"
            )

    async def close(
        self, code: int = CLOSE_NORMAL, reason: str = "", *, flush: bool = True
    ) -> None:
        """Close (sending queued frames first when ``flush``) and wait until done."""
        if self._closer is None:
            if not self.ws.closed:
                self.server_close = (code, reason)
            self._closer = asyncio.create_task(
                self._close(code, reason, flush), name=f"ws-close {self.peer}"
            )
        await asyncio.shield(self._closer)

    async def _close(self, code: int, reason: str, flush: bool) -> None:
        if flush and not self.ws.closed:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_END)
            await asyncio.wait({self._writer}, timeout=self._close_timeout_s)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode("utf-8")[:120]),
                self._close_timeout_s,
            )
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            log.info(
                "WebSocket %s: close did not complete (%s); dropping the transport", self.peer, exc
            )
            if self._transport is not None:
                self._transport.abort()
