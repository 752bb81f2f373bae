"""A media worker process: a :class:`media.Room` of subscribers fed by a packet link
(:mod:`media.link`) from the process that holds the publishers, driven over a control
socket. The shape of ``media.workers`` (docs/media.md, "Worker processes"); the server does
not use it yet.

Run as ``python -m media.worker --link-fd N --control-fd M [--host-addresses A,B]``; the
parent keeps the other ends of two ``socketpair``s: ``SOCK_DGRAM`` for packets (and keyframe
requests back), ``SOCK_STREAM`` for control. Control messages are JSON lines:
``{"id", "op", ...}`` → ``{"id", "ok": true, "result"}`` or ``{"id", "ok": false, "error":
{"code", "message"}}``. Ops: ``offer {participant_id, sdp}`` → ``{sdp}``; ``subscribe
{participant_id, source_id, mid?}``; ``remove {participant_id}``; ``sources`` → ids;
``stats``; ``close``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
from typing import Any

from media.config import MediaConfig
from media.errors import MediaError
from media.link import LinkReceiver
from media.room import Room


async def _serve(link: socket.socket, control: socket.socket, config: MediaConfig) -> None:
    from media.aiortc_hooks import use_host_addresses

    restore = use_host_addresses(config.host_addresses)
    loop = asyncio.get_running_loop()
    room = Room(config)
    _, receiver = await loop.create_datagram_endpoint(
        lambda: LinkReceiver(link, on_source=room.add_source,
                             on_end=lambda s: room.remove_source(s.source_id)), sock=link)
    reader, writer = await asyncio.open_unix_connection(sock=control)
    try:
        while line := await reader.readline():
            request = json.loads(line)
            try:
                result = await _op(room, request)
                reply: dict[str, Any] = {"id": request.get("id"), "ok": True, "result": result}
            except MediaError as exc:
                reply = {"id": request.get("id"), "ok": False,
                         "error": {"code": exc.code, "message": exc.message}}
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
            if request.get("op") == "close":
                break
    finally:
        receiver.close()
        await room.close()
        writer.close()
        restore()


async def _op(room: Room, request: dict[str, Any]) -> Any:
    op = request.get("op")
    pid = str(request.get("participant_id", ""))
    if op == "offer":
        peer = room.peers.get(pid) or room.create_peer(pid)
        return {"sdp": await peer.accept_offer(str(request["sdp"]))}
    if op == "subscribe":
        sink = room.subscribe(pid, str(request["source_id"]), request.get("mid"))
        return {"mid": sink.params.mid}
    if op == "remove":
        await room.remove_peer(pid)
        return None
    if op == "sources":
        return sorted(room.sources)
    if op == "stats":
        return room.stats()
    if op == "close":
        return None
    raise MediaError("invalid_state", f"unknown op {op!r}")


class WorkerProcess:
    """The parent's handle on one worker: its process, link socket and control channel."""

    def __init__(self, host_addresses: tuple[str, ...] = ()) -> None:
        self.link, child_link = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args = [sys.executable, "-m", "media.worker", "--link-fd", str(child_link.fileno()),
                "--control-fd", str(child_control.fileno())]
        if host_addresses:
            args += ["--host-addresses", ",".join(host_addresses)]
        self.process = subprocess.Popen(args, pass_fds=(child_link.fileno(),
                                                        child_control.fileno()))
        child_link.close()
        child_control.close()
        self._control = control
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = 0
        self._lock = asyncio.Lock()

    async def call(self, op: str, **fields: Any) -> Any:
        """One control request; raises MediaError when the worker refused it."""
        async with self._lock:
            if self._reader is None:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    sock=self._control)
            assert self._writer is not None
            self._ids += 1
            self._writer.write(json.dumps({"id": self._ids, "op": op, **fields}).encode()
                               + b"\n")
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise MediaError("peer_closed", "the media worker is gone")
        reply = json.loads(line)
        if not reply["ok"]:
            raise MediaError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    async def close(self, timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self.call("close"), timeout)
        except (MediaError, TimeoutError, OSError):
            pass
        if self._writer is not None:
            self._writer.close()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.process.wait), timeout)
        except TimeoutError:
            self.process.kill()
            await loop.run_in_executor(None, self.process.wait)
        self.link.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m media.worker")
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--host-addresses", default="")
    args = parser.parse_args(argv)
    link = socket.socket(fileno=args.link_fd)
    control = socket.socket(fileno=args.control_fd)
    hosts = tuple(a for a in args.host_addresses.split(",") if a)
    asyncio.run(_serve(link, control, MediaConfig(host_addresses=hosts)))


if __name__ == "__main__":
    main()
