"""A pool of media worker processes (``media.workers``): the server-process side of
:mod:`media.worker`. Each worker has one packet link (a :class:`media.link.LinkEndpoint`:
its sources come up as remote sources, sources of other workers go down) and one control
channel. A new participant goes to the least loaded worker (peer count). A worker whose
channel closes (it died) is reported to every room (its participants' peers failed) and
replaced. Rooms (:class:`media.remote.RoomProxy`) register here by name; the pool routes
each worker's events and uplinked sources to them. Every task here is owned by the pool
and ended by :meth:`WorkerPool.close`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Protocol

from media.config import MediaConfig
from media.errors import MediaError
from media.link import CONTROL_LINE_LIMIT, LinkEndpoint
from media.loop_monitor import LoopReport
from media.source import Source
from media.worker import config_to_json

logger = logging.getLogger(__name__)

RESPAWN_DELAY_S = 0.5
CALL_TIMEOUT_S = 30.0
"A worker that does not answer a request in this time is treated as gone for that call."


EventHandler = Callable[[dict[str, Any]], None]


class WorkerProcess:
    """The parent's handle on one worker: its process, link socket and control channel.
    One reader task (owned, ended by :meth:`close`) matches replies to calls by id and
    passes events to ``on_event``; :attr:`exited` resolves when the channel closes."""

    def __init__(self, config: MediaConfig | None = None, *,
                 host_addresses: tuple[str, ...] = (),
                 on_event: EventHandler | None = None) -> None:
        if config is None:
            config = MediaConfig(host_addresses=host_addresses)
        self.config = config
        self.on_event = on_event
        self.link, child_link = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for sock in (self.link, child_link):
            for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        self.link.setblocking(False)
        control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args = [sys.executable, "-m", "media.worker", "--link-fd", str(child_link.fileno()),
                "--control-fd", str(child_control.fileno())]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        pass_fds=(child_link.fileno(), child_control.fileno()))
        child_link.close()
        child_control.close()
        self._control = control
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._ids = 0
        self._start_lock = asyncio.Lock()
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    async def start(self) -> None:
        """Connect the control channel and configure the worker (idempotent)."""
        async with self._start_lock:
            if self._writer is not None:
                return
            reader, self._writer = await asyncio.open_unix_connection(sock=self._control, limit=CONTROL_LINE_LIMIT)
            self._reader_task = asyncio.get_running_loop().create_task(
                self._read(reader), name=f"media-worker-reader {self.pid}")
            self.send("configure", id=0, config=config_to_json(self.config))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    logger.warning("media worker %d: bad control line", self.pid)
                    continue
                if "event" in message:
                    if self.on_event is not None:
                        try:
                            self.on_event(message)
                        except Exception:
                            logger.exception("media worker event handler failed")
                    continue
                future = self._calls.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (ConnectionError, OSError):
            pass
        except ValueError:  # a line over CONTROL_LINE_LIMIT: the channel cannot be trusted
            logger.exception("media worker %d: control line too long", self.pid)
        finally:
            for future in self._calls.values():
                if not future.done():
                    future.set_exception(MediaError("peer_closed", "the media worker is gone"))
            self._calls.clear()
            if not self.exited.done():
                self.exited.set_result(None)

    def send(self, op: str, **fields: Any) -> None:
        """A request without reply (errors are logged by the worker)."""
        if self._writer is None or self._writer.is_closing() or self.exited.done():
            return
        self._writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")

    async def call(self, op: str, **fields: Any) -> Any:
        """One control request; raises MediaError when the worker refused it (``details``
        on the exception: ``broken``/``closed`` of the peer) or is gone."""
        await self.start()
        if self.exited.done():
            raise MediaError("peer_closed", "the media worker is gone")
        self._ids += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[self._ids] = future
        call_id = self._ids
        self.send(op, id=call_id, **fields)
        try:
            reply = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        except TimeoutError:
            self._calls.pop(call_id, None)
            raise MediaError("peer_closed", f"the media worker did not answer {op!r}") from None
        if not reply["ok"]:
            error = reply["error"]
            exc = MediaError(error["code"], error["message"])
            exc.details = {"broken": bool(error.get("broken")),  # type: ignore[attr-defined]
                           "closed": bool(error.get("closed"))}
            raise exc
        return reply["result"]

    async def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to close (its rooms end), wait for it, kill it after ``timeout``."""
        if self._writer is not None and self.alive:
            try:
                await asyncio.wait_for(self.call("close"), timeout)
            except (MediaError, TimeoutError, OSError):
                pass
        if self._writer is not None:
            self._writer.close()
        else:
            self._control.close()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.process.wait), timeout)
        except TimeoutError:
            self.process.kill()
            await loop.run_in_executor(None, self.process.wait)
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if not self.exited.done():
            self.exited.set_result(None)
        self.link.close()  # no-op if a datagram transport already closed it


class PoolRoom(Protocol):
    """What the pool tells a room (implemented by media.remote.RoomProxy)."""

    def source_added(self, source: Source, worker: WorkerHandle) -> None: ...

    def source_ended(self, source: Source) -> None: ...

    def worker_event(self, worker: WorkerHandle, message: dict[str, Any]) -> None: ...

    def worker_stats(self, worker: WorkerHandle, data: dict[str, Any]) -> None: ...

    def worker_lost(self, worker: WorkerHandle) -> None: ...


class WorkerHandle:
    """One worker as the pool sees it: process, link endpoint, load."""

    def __init__(self, pool: WorkerPool, config: MediaConfig) -> None:
        self.process = WorkerProcess(config, on_event=lambda m: pool._event(self, m))
        self.endpoint = LinkEndpoint(self.process.link,
                                     on_source=lambda s: pool._source(self, s),
                                     on_end=lambda s: pool._ended(self, s),
                                     min_keyframe_interval=config.keyframe_min_interval_s,
                                     mirror_stats=True)
        self.peers = 0
        "Participants placed on this worker (its load)."
        self.loop_lag_s = 0.0
        "The worst event-loop wakeup lag of the worker's last one-second report."

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.alive

    def __repr__(self) -> str:
        return f"WorkerHandle(pid={self.pid}, peers={self.peers}, alive={self.alive})"


class WorkerPool:
    """``size`` worker processes (0 = CPU count), started by :meth:`start`."""

    def __init__(self, config: MediaConfig, size: int = 0) -> None:
        self.config = config
        self.size = size or os.cpu_count() or 1
        self._workers: list[WorkerHandle] = []
        self._rooms: dict[str, PoolRoom] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._closed = False
        self.replaced = 0
        "Workers started to replace one that died."
        self.on_loop_report: Callable[[WorkerHandle, LoopReport], None] | None = None
        "Called with each worker's one-second loop report (the server feeds /metrics)."

    @property
    def workers(self) -> list[WorkerHandle]:
        return list(self._workers)

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Start the missing workers (idempotent; cheap once started)."""
        if len(self._workers) >= self.size:
            return
        async with self._lock:
            while len(self._workers) < self.size and not self._closed:
                self._workers.append(await self._spawn())

    async def _spawn(self) -> WorkerHandle:
        handle = WorkerHandle(self, self.config)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: handle.endpoint, sock=handle.process.link)
        await handle.process.start()
        self._own(self._watch(handle), f"media-worker-watch {handle.pid}")
        logger.info("media worker %d started", handle.pid)
        return handle

    def _own(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def acquire(self) -> WorkerHandle:
        """The least loaded live worker (counted as one more peer by the caller)."""
        live = [w for w in self._workers if w.alive]
        if not live or self._closed:
            raise MediaError("peer_closed", "no media worker is running")
        return min(live, key=lambda w: w.peers)

    # --- rooms --------------------------------------------------------------------------

    def register(self, name: str, room: PoolRoom) -> None:
        if name in self._rooms:
            raise MediaError("duplicate_participant", f"room {name!r} exists")
        self._rooms[name] = room

    def unregister(self, name: str, room: PoolRoom) -> None:
        if self._rooms.get(name) is room:
            del self._rooms[name]

    def _room_of(self, worker: WorkerHandle, source: Source) -> PoolRoom | None:
        return self._rooms.get(worker.endpoint.receiver.tags.get(source.source_id, ""))

    def _source(self, worker: WorkerHandle, source: Source) -> None:
        room = self._room_of(worker, source)
        if room is not None:
            room.source_added(source, worker)

    def _ended(self, worker: WorkerHandle, source: Source) -> None:
        room = self._room_of(worker, source)
        if room is not None:
            room.source_ended(source)
        else:
            source.close()

    def _event(self, worker: WorkerHandle, message: dict[str, Any]) -> None:
        if message.get("event") == "loop":
            try:
                report = LoopReport(float(message["lag_max_s"]), int(message["stalls"]))
            except (KeyError, TypeError, ValueError):
                return
            worker.loop_lag_s = report.lag_max_s
            if self.on_loop_report is not None:
                self.on_loop_report(worker, report)
            return
        if message.get("event") == "stats":
            for name, data in (message.get("rooms") or {}).items():
                room = self._rooms.get(str(name))
                if room is not None:
                    room.worker_stats(worker, data)
            return
        room = self._rooms.get(str(message.get("room", "")))
        if room is not None:
            room.worker_event(worker, message)

    # --- supervision --------------------------------------------------------------------

    async def _watch(self, worker: WorkerHandle) -> None:
        await asyncio.shield(worker.process.exited)
        if self._closed:
            return
        logger.error("media worker %d is gone (exit code %s); replacing it", worker.pid,
                     worker.process.process.poll())
        for room in list(self._rooms.values()):
            try:
                room.worker_lost(worker)
            except Exception:
                logger.exception("media: a room failed to handle a lost worker")
        worker.endpoint.close()  # before the socket: its transport owns the descriptor
        await worker.process.close(timeout=2.0)
        await asyncio.sleep(RESPAWN_DELAY_S)  # a worker that cannot start must not spin
        async with self._lock:
            if self._closed:
                return
            fresh = await self._spawn()
            self._workers = [fresh if w is worker else w for w in self._workers]
            self.replaced += 1

    async def close(self, timeout: float = 5.0) -> None:
        """Close every worker (each gets ``timeout`` to end, then is killed)."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        async with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:  # every room is closed: nothing more to relay
            worker.endpoint.close()
        await asyncio.gather(*(w.process.close(timeout) for w in workers),
                             return_exceptions=True)
