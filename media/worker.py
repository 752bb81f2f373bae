"""A media worker process: the aiortc peers of some participants of some meetings (one
:class:`media.Room` per meeting), linked to the process that keeps the policy (the server)
by a packet link (:mod:`media.link`) and a control channel. See docs/media.md, "Worker
processes"; :mod:`media.pool` (``WorkerProcess``, ``WorkerPool``) and :mod:`media.remote`
are the server side.

Run as ``python -m media.worker --link-fd N --control-fd M``; the parent keeps the other
ends of two ``socketpair``s: ``SOCK_DGRAM`` for packets both ways (this worker's sources go
up, on demand for video; sources of other workers come down), ``SOCK_STREAM`` for control.
Control messages are JSON lines. Requests ``{"id"?, "op", ...}``; a request with an id gets
``{"id", "ok": true, "result"}`` or ``{"id", "ok": false, "error": {code, message, broken,
closed}}``. Unsolicited events ``{"event": ...}``: ``slot_idle``, ``peer_closed``, every
``STATS_PERIOD_S`` ``stats`` (sinks and local sources of every room) and every second
``loop`` (``lag_max_s``, ``stalls``: :mod:`media.loop_monitor`).
Ops: ``configure {config}`` (first), ``offer {room, participant_id, sdp}`` → ``{sdp, slots,
sources}``, ``candidate {room, participant_id, candidate, mid}``, ``subscribe {room,
participant_id, source_id, mid}`` (waits for a source still on its way down the link),
``unsubscribe {room, participant_id, mid}``, ``keyframe {room, participant_id, mid}``,
``remove {room, participant_id}``, ``close_room {room}``, ``sources {room}``, ``stats``,
``close``.
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
from collections.abc import Callable
from typing import Any

from media.config import IceServer, MediaConfig
from media.errors import MediaError
from media.link import CONTROL_LINE_LIMIT, LinkEndpoint
from media.loop_monitor import LoopMonitor, LoopReport
from media.room import MediaEvent, PeerClosed, Room, SlotIdle, SourceAdded, SourceRemoved
from media.runtime import settle_gc
from media.source import Source

logger = logging.getLogger(__name__)

STATS_PERIOD_S = 0.25
SINK_FIELDS = ("packets", "bytes", "keyframes", "fraction_lost", "rtt_ms", "reports",
               "remb_bps", "keyframe_requests")
SOURCE_FIELDS = ("packets", "bytes", "keyframes", "frames", "retransmitted",
                 "keyframe_requests", "keyframe_requests_sent", "sink_errors")
ASYNC_OPS = ("offer", "candidate", "remove", "close_room")


def config_to_json(config: MediaConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_json(data: dict[str, Any]) -> MediaConfig:
    fields = {f.name for f in dataclasses.fields(MediaConfig)}
    values: dict[str, Any] = {k: v for k, v in data.items() if k in fields}
    values["ice_servers"] = tuple(IceServer(**s) for s in values.get("ice_servers", ()))
    for name in ("video_codecs", "host_addresses"):
        if name in values:
            values[name] = tuple(values[name])
    return MediaConfig(**values)


class _Worker:
    def __init__(self, link: socket.socket, writer: asyncio.StreamWriter) -> None:
        self.config = MediaConfig()
        self.rooms: dict[str, Room] = {}
        self.remote: set[str] = set()
        "Sources that came down the link (never sent back up)."
        self.pending: dict[tuple[str, str, str], str] = {}
        "(room, participant, mid) → a source id to subscribe once it arrives."
        self.locks: dict[str, asyncio.Lock] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.writer = writer
        self.link = link
        self.endpoint = LinkEndpoint(link, on_source=self._downlinked, on_end=self._ended)
        self._restore: Callable[[], None] = lambda: None

    # --- rooms and the link -------------------------------------------------------------

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(self.config,
                                           on_event=lambda e: self._on_event(name, e))
        return room

    def _downlinked(self, source: Source) -> None:
        self.remote.add(source.source_id)
        try:
            self.room(self.endpoint.receiver.tags.get(source.source_id, "")).add_source(source)
        except MediaError as exc:
            logger.warning("worker: %s", exc)

    def _ended(self, source: Source) -> None:
        name = self.endpoint.receiver.tags.get(source.source_id, "")
        room = self.rooms.get(name)
        if room is not None and room.sources.get(source.source_id) is source:
            room.remove_source(source.source_id)
        else:
            source.close()
        self.remote.discard(source.source_id)
        if room is not None and not room.peers and not room.sources:
            del self.rooms[name]  # nothing in it: no peer, no source, no task

    def _on_event(self, name: str, event: MediaEvent) -> None:
        if isinstance(event, SourceAdded):
            if event.source_id not in self.remote:
                source = self.rooms[name].sources[event.source_id]
                self.endpoint.sender.forward(source, tag=name, on_demand=True)
            for key, sid in list(self.pending.items()):
                if key[0] == name and sid == event.source_id:
                    self._subscribe(name, key[1], sid, key[2])
        elif isinstance(event, SlotIdle):
            self.emit({"event": "slot_idle", "room": name, "participant_id":
                       event.participant_id, "mid": event.mid, "source_id": event.source_id,
                       "reason": event.reason})
        elif isinstance(event, PeerClosed):
            for key in [k for k in self.pending if k[:2] == (name, event.participant_id)]:
                del self.pending[key]
            self.emit({"event": "peer_closed", "room": name,
                       "participant_id": event.participant_id, "reason": event.reason})
        elif isinstance(event, SourceRemoved):
            pass  # the uplink's sink heard it and sent "E"

    def emit(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message, default=str).encode() + b"\n")

    def _existing(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            raise MediaError("unknown_participant", f"no room {name!r} here")
        return room

    def _subscribe(self, name: str, pid: str, sid: str, mid: str | None) -> Any:
        room = self._existing(name)
        if sid not in room.sources:
            if mid is None:
                raise MediaError("unknown_source", f"no source {sid!r}")
            self.pending[(name, pid, mid)] = sid
            return {"mid": mid, "pending": True}
        if mid is not None:
            self.pending.pop((name, pid, mid), None)
        sink = room.subscribe(pid, sid, mid)
        return {"mid": sink.params.mid}

    # --- control ------------------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader) -> None:
        stats = asyncio.get_running_loop().create_task(self._stats_loop())
        monitor = LoopMonitor(self._loop_report)
        monitor.start()
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    logger.warning("worker: bad control line (%d bytes): %s", len(line), exc)
                    continue
                op = request.get("op")
                if op in ASYNC_OPS:
                    task = asyncio.get_running_loop().create_task(self._run(request))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                else:
                    await self._run(request)
                if op == "close":
                    break
        finally:
            await monitor.close()
            stats.cancel()
            await asyncio.gather(stats, return_exceptions=True)
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for room in list(self.rooms.values()):
                await room.close()
            self.endpoint.close()
            self._restore()

    def _loop_report(self, report: LoopReport) -> None:
        """Every second: how late this worker's loop woke up (the server's /metrics)."""
        self.emit({"event": "loop", "lag_max_s": round(report.lag_max_s, 4),
                   "stalls": report.stalls})

    async def _run(self, request: dict[str, Any]) -> None:
        rid = request.get("id")
        try:
            result = await self._op(request)
            reply: dict[str, Any] = {"id": rid, "ok": True, "result": result}
        except MediaError as exc:
            pid = str(request.get("participant_id", ""))
            room = self.rooms.get(str(request.get("room", "")))
            peer = room.peers.get(pid) if room is not None else None
            reply = {"id": rid, "ok": False, "error": {
                "code": exc.code, "message": exc.message,
                "broken": bool(peer is not None and peer.broken),
                "closed": bool(peer is None or peer.closed)}}
        except Exception as exc:  # a bug must not kill the worker nor leave a caller hanging
            logger.exception("worker: op %s failed", request.get("op"))
            reply = {"id": rid, "ok": False, "error": {"code": "internal", "message":
                                                        str(exc)[:200], "broken": True,
                                                        "closed": False}}
        if rid is not None:
            self.emit(reply)
        elif not reply["ok"]:
            logger.info("worker: %s failed: %s", request.get("op"), reply["error"]["message"])

    async def _op(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        name = str(request.get("room", ""))
        pid = str(request.get("participant_id", ""))
        if op == "configure":
            from media.aiortc_hooks import use_host_addresses

            self.config = config_from_json(request["config"])
            self._restore = use_host_addresses(self.config.host_addresses)
            return {"pid": os.getpid()}
        if op in ("offer", "candidate", "remove"):
            lock = self.locks.setdefault(f"{name}\0{pid}", asyncio.Lock())
            async with lock:
                try:
                    return await self._peer_op(op, name, pid, request)
                finally:
                    if not getattr(lock, "_waiters", None):
                        self.locks.pop(f"{name}\0{pid}", None)
        if op == "subscribe":
            mid = request.get("mid")
            return self._subscribe(name, pid, str(request["source_id"]),
                                   None if mid is None else str(mid))
        if op == "unsubscribe":
            self.pending.pop((name, pid, str(request["mid"])), None)
            self._existing(name).unsubscribe(pid, str(request["mid"]))
            return None
        if op == "keyframe":
            sink = self._existing(name).peer(pid).sinks.get(str(request["mid"]))
            if sink is not None:
                sink.on_keyframe_request()
            return None
        if op == "close_room":
            room = self.rooms.pop(name, None)
            if room is not None:
                await room.close()
            return None
        if op == "sources":
            return sorted(self.rooms[name].sources) if name in self.rooms else []
        if op == "stats":
            return {n: r.stats() for n, r in self.rooms.items()}
        if op == "close":
            return None
        raise MediaError("invalid_state", f"unknown op {op!r}")

    async def _peer_op(self, op: str, name: str, pid: str, request: dict[str, Any]) -> Any:
        room = self.room(name)
        if op == "remove":
            for key in [k for k in self.pending if k[:2] == (name, pid)]:
                del self.pending[key]
            await room.remove_peer(pid)
            return None
        if op == "candidate":
            mid = request.get("mid")
            await room.peer(pid).add_ice_candidate(request.get("candidate"),
                                                   None if mid is None else str(mid))
            return None
        peer = room.peers.get(pid) or room.create_peer(pid)
        before = set(peer.sources)
        sdp = await peer.accept_offer(str(request["sdp"]))
        slots = [{"mid": mid, "kind": sink.kind, "codecs": [dataclasses.asdict(c) for c, _ in
                                                            sink.params.codecs]}
                 for mid, sink in peer.sinks.items()]
        sources = [s.source_id for mid, s in peer.sources.items() if mid not in before]
        return {"sdp": sdp, "slots": slots, "sources": sources}

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_PERIOD_S)
            rooms: dict[str, Any] = {}
            for name, room in self.rooms.items():
                sinks = {pid: {mid: {**{f: getattr(s.stats, f) for f in SINK_FIELDS},
                                     "sending": s.sending}
                               for mid, s in peer.sinks.items()}
                         for pid, peer in room.peers.items()}
                sources = {sid: {f: getattr(s.stats, f) for f in SOURCE_FIELDS}
                           for sid, s in room.sources.items() if sid not in self.remote}
                if sinks or sources:
                    rooms[name] = {"sinks": sinks, "sources": sources}
            if rooms:
                self.emit({"event": "stats", "rooms": rooms})


async def _serve(link: socket.socket, control: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_unix_connection(sock=control, limit=CONTROL_LINE_LIMIT)
    worker = _Worker(link, writer)
    await loop.create_datagram_endpoint(lambda: worker.endpoint, sock=link)
    settle_gc()
    try:
        await worker.serve(reader)
    finally:
        writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m media.worker")
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="media-worker %(process)d %(message)s")
    # The parent closes this process (or its control channel ends): a Ctrl-C in the server's
    # terminal must not kill the worker before the server has closed its meetings.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    link = socket.socket(fileno=args.link_fd)
    link.setblocking(False)
    control = socket.socket(fileno=args.control_fd)
    asyncio.run(_serve(link, control))


if __name__ == "__main__":
    main()
