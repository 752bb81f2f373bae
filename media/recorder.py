"""The recorder process (ghi hình): ``python -m media.recorder`` writes one meeting's
recording, fed over a packet link (:mod:`media.link`) by the server, so decoding and encoding
never run on the server's event loop.

The parent (:class:`RecorderProcess`) keeps the other ends of two ``socketpair``s:
``SOCK_DGRAM`` for packets (a :class:`media.link.LinkSender` forwards only the sources the
recording needs; keyframe requests come back on it), ``SOCK_STREAM`` for control, JSON lines
``{"id", "op", ...}`` → ``{"id", "ok", "result"|"error"}``:

* ``select {video: source_id|null, audio: [source_id]}``: what the file carries now (the
  main-screen video; the audio sources to mix). A newly selected video is held on its last
  picture until the new source's keyframe arrives (asked for at once, then every 0.6 s).
* ``stats`` → counters so far; ``stop`` → the file is finalised (encoders flushed, container
  closed, ``<out>.part`` renamed to ``<out>``) and the final counters are returned; the process
  then exits. If the control socket closes without ``stop`` the file is finalised too.

The engine (depacketize, decode, mix, encode, mux) is :mod:`media.recorder_engine`; it runs in
a thread of this process while the event loop only queues packets.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from media.errors import MediaError
from media.link import CONTROL_LINE_LIMIT, LinkReceiver, LinkSender
from media.packet import MediaPacket
from media.recorder_engine import Engine, EngineStats, Item, OutputSpec
from media.source import Source

log = logging.getLogger(__name__)


class _Tap:
    """The packet sink on every remote source: queues packets for the engine thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def on_packet(self, source: Source, packet: MediaPacket, ntp_time: int) -> None:
        self._engine.put(Item(source.source_id, source.kind, packet.sequence_number,
                              packet.timestamp, packet.marker, packet.payload))

    def on_source_ended(self, source: Source) -> None:
        self._engine.put(Item(source.source_id, "end"))


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


async def _serve(link: socket.socket, control: socket.socket, spec: OutputSpec,
                 final: Path) -> None:
    loop = asyncio.get_running_loop()
    sources: dict[str, Source] = {}

    def ask(source_id: str) -> None:  # from the engine thread
        def request() -> None:
            source = sources.get(source_id)
            if source is not None:
                source.request_keyframe()
        loop.call_soon_threadsafe(request)

    engine = Engine(spec, ask)
    tap = _Tap(engine)

    def added(source: Source) -> None:
        old = sources.get(source.source_id)
        if old is not None:
            old.close()
        sources[source.source_id] = source
        source.add_sink(tap)
        if source.kind == "video":
            source.request_keyframe()

    def ended(source: Source) -> None:
        if sources.get(source.source_id) is source:
            del sources[source.source_id]
        source.close()

    done: asyncio.Future[EngineStats] = loop.create_future()

    def run() -> None:
        try:
            stats = engine.run()
        except BaseException as exc:  # reported to the parent, not swallowed
            # passed as an argument now: Python unbinds ``exc`` when the except block ends,
            # before the loop runs the callback
            loop.call_soon_threadsafe(_fail, done, exc)
            engine.started.set()  # wakes the start-up wait: the failure is reported at once
        else:
            loop.call_soon_threadsafe(_succeed, done, stats)

    thread = threading.Thread(target=run, name="recorder-engine", daemon=True)
    thread.start()
    _, receiver = await loop.create_datagram_endpoint(
        lambda: LinkReceiver(link, on_source=added, on_end=ended), sock=link)
    reader, writer = await asyncio.open_unix_connection(sock=control, limit=CONTROL_LINE_LIMIT)
    await loop.run_in_executor(None, engine.started.wait, 30.0)
    writer.write(json.dumps({"id": 0, "ok": True, "result": "ready"}).encode() + b"\n")

    async def finish() -> dict[str, Any]:
        engine.stop()
        stats = await done
        if spec.path.exists():
            os.replace(spec.path, final)
        return {**dataclasses.asdict(stats), "duration_s": stats.duration_s}

    # SIGTERM/SIGINT (a service manager stopping everything, Ctrl-C in a terminal): finalise
    # the file and exit; the parent decides everything else over the control channel.
    term: asyncio.Future[None] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _succeed, term, None)
    stopped = False
    try:
        while True:
            line_task = asyncio.ensure_future(reader.readline())
            waiting: set[asyncio.Future[Any]] = {line_task, done, term}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not line_task.done():
                line_task.cancel()
                if term.done():
                    break
                done.result()  # the engine failed: nothing more to record
            line = line_task.result()
            if not line:
                break
            request = json.loads(line)
            op = request.get("op")
            try:
                if op == "select":
                    video = request.get("video")
                    engine.select(None if video is None else str(video),
                                  [str(a) for a in request.get("audio") or ()])
                    result: Any = None
                elif op == "stats":
                    result = dataclasses.asdict(engine.stats)
                elif op == "stop":
                    result = await finish()
                    stopped = True
                else:
                    raise MediaError("invalid_state", f"unknown op {op!r}")
                reply: dict[str, Any] = {"id": request.get("id"), "ok": True, "result": result}
            except MediaError as exc:
                reply = {"id": request.get("id"), "ok": False,
                         "error": {"code": exc.code, "message": exc.message}}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            if stopped:
                break
    finally:
        if not stopped and not done.done():
            await finish()  # the parent went away: still leave a playable file
        receiver.close()
        writer.close()


class RecorderProcess:
    """The server's handle on one recorder process: the process, its packet link (a
    :class:`LinkSender` once :meth:`open` ran) and the control channel."""

    def __init__(self, spec: OutputSpec, final: Path) -> None:
        self.spec, self.final = spec, final
        self.sender: LinkSender | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._link, self._child_link = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._control, self._child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = 0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        spec = self.spec
        args = [sys.executable, "-m", "media.recorder",
                "--link-fd", str(self._child_link.fileno()),
                "--control-fd", str(self._child_control.fileno()),
                "--out", str(self.final), "--width", str(spec.width), "--height", str(spec.height),
                "--fps", str(spec.fps), "--video-bitrate", str(spec.video_bitrate),
                "--metadata", json.dumps(spec.metadata)]
        try:
            self.process = await asyncio.create_subprocess_exec(
                *args, pass_fds=(self._child_link.fileno(), self._child_control.fileno()))
        finally:
            self._child_link.close()
            self._child_control.close()
        loop = asyncio.get_running_loop()
        self._link.setblocking(False)
        _, self.sender = await loop.create_datagram_endpoint(lambda: LinkSender(self._link),
                                                             sock=self._link)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._control, limit=CONTROL_LINE_LIMIT)
        try:  # the child's first line: its output clock started (the file's time 0)
            line = await asyncio.wait_for(self._reader.readline(), 60.0)
        except TimeoutError:
            line = b""
        if not line or json.loads(line).get("result") != "ready":
            raise MediaError("peer_closed", "the recorder did not start")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def call(self, op: str, timeout: float = 10.0, **fields: Any) -> Any:
        """One control request; MediaError when refused or when the recorder is gone."""
        async with self._lock:
            if self._writer is None or self._reader is None:
                raise MediaError("peer_closed", "the recorder is not running")
            self._ids += 1
            try:
                self._writer.write(json.dumps({"id": self._ids, "op": op, **fields}).encode()
                                   + b"\n")
                await self._writer.drain()
                line = await asyncio.wait_for(self._reader.readline(), timeout)
            except (OSError, TimeoutError) as exc:
                raise MediaError("peer_closed", f"the recorder did not answer: {exc}") from None
        if not line:
            raise MediaError("peer_closed", "the recorder is gone")
        reply = json.loads(line)
        if not reply["ok"]:
            raise MediaError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    async def close(self, timeout: float = 10.0) -> None:
        """Stop the link and the process (killed if it does not exit within ``timeout``)."""
        if self.sender is not None:
            self.sender.close()
        if self._writer is not None:
            self._writer.close()
        if self.process is not None and self.process.returncode is None:
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._link.close()
        self._control.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m media.recorder")
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--out", required=True, help="final path; written as <out>.part")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--video-bitrate", type=int, default=1_500_000)
    parser.add_argument("--metadata", default="{}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    final = Path(args.out)
    spec = OutputSpec(final.with_name(final.name + ".part"), args.width, args.height, args.fps,
                      args.video_bitrate, metadata={str(k): str(v) for k, v in
                                                    json.loads(args.metadata).items()})
    link = socket.socket(fileno=args.link_fd)
    control = socket.socket(fileno=args.control_fd)
    asyncio.run(_serve(link, control, spec, final))


if __name__ == "__main__":
    main()
