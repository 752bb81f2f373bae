"""A meeting's media when the peers live in worker processes (:mod:`media.pool`): the same
calls and events as :class:`media.Room`, so the slot policy (server/media_room.py) does not
care where a peer runs.

- :class:`RoomProxy`: ``create_peer`` / ``remove_peer`` / ``subscribe`` / ``unsubscribe`` /
  ``sources`` / ``peers`` / ``request_keyframe`` / ``stats`` / ``close``; events
  ``SourceAdded``/``SourceRemoved``/``SlotIdle``/``PeerClosed`` to ``on_event``.
- Every source published in a worker is a *remote* :class:`media.Source` here (fed by the
  worker's link; video only while something here attaches a sink: on demand), so speaker
  detection, the recorder or any packet sink works on it. Its ``stats`` mirror the worker's.
- A subscriber on worker W2 given a source published on W1 gets it through this process:
  the source is forwarded down W2's link **once per worker** (not per subscriber) while any
  slot on W2 carries it, stopped ``FORWARD_GRACE_S`` after the last one lets go (a switching
  slot keeps the old source until the new keyframe). A subscriber on the publisher's worker
  is served there directly.
- :class:`PeerProxy` / :class:`SinkProxy` (media/proxy.py): ``accept_offer``, ``add_ice_candidate``,
  ``sinks`` ({mid: SinkProxy with kind, source, stats, sending, on_keyframe_request}),
  ``sources`` ({mid: Source}), ``broken``, ``closed``; sink stats mirror the worker's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from media.errors import MediaError
from media.peer import SlotInfo
from media.pool import WorkerHandle, WorkerPool
from media.proxy import PeerProxy, SinkProxy
from media.room import EventHandler, MediaEvent, PeerClosed, SlotIdle, SourceAdded, SourceRemoved
from media.source import Source

logger = logging.getLogger(__name__)

FORWARD_GRACE_S = 2.0
SOURCES_WAIT_S = 3.0

__all__ = ["FORWARD_GRACE_S", "PeerProxy", "RoomProxy", "SinkProxy"]


@dataclass(eq=False)
class _Forward:
    """A source forwarded down one worker's link, and the slots there that carry it."""

    worker: WorkerHandle
    source: Source
    index: int
    users: set[tuple[str, str]] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class RoomProxy:
    """One meeting's media spread over a :class:`WorkerPool` (see module doc)."""

    def __init__(self, pool: WorkerPool, name: str, *,
                 on_event: EventHandler | None = None) -> None:
        self.pool = pool
        self.name = name
        self._on_event = on_event
        self._peers: dict[str, PeerProxy] = {}
        self._sources: dict[str, Source] = {}
        self._origin: dict[str, WorkerHandle] = {}
        self._forwards: dict[tuple[int, str], _Forward] = {}
        self._added = asyncio.Event()
        self._closed = False
        pool.register(name, self)

    # --- the Room interface -------------------------------------------------------------

    @property
    def peers(self) -> dict[str, PeerProxy]:
        return dict(self._peers)

    @property
    def sources(self) -> dict[str, Source]:
        return dict(self._sources)

    @property
    def forwards(self) -> dict[tuple[int, str], int]:
        """(worker pid, source id) → slots there carrying it, for every forwarded source."""
        return {(f.worker.pid, sid): len(f.users) for (_, sid), f in self._forwards.items()}

    def peer(self, participant_id: str) -> PeerProxy:
        peer = self._peers.get(participant_id)
        if peer is None:
            raise MediaError("unknown_participant", f"no peer for {participant_id!r}")
        return peer

    def create_peer(self, participant_id: str) -> PeerProxy:
        if self._closed:
            raise MediaError("peer_closed", "the room is closed")
        if participant_id in self._peers:
            raise MediaError("duplicate_participant", f"{participant_id!r} already has a peer")
        peer = self._peers[participant_id] = PeerProxy(self, participant_id)
        return peer

    async def remove_peer(self, participant_id: str, reason: str = "removed") -> None:
        peer = self._peers.pop(participant_id, None)
        if peer is None:
            return
        worker = peer.worker
        self._drop(peer)
        if worker is not None and worker.alive:
            try:
                await worker.process.call("remove", room=self.name,
                                          participant_id=participant_id)
            except MediaError as exc:
                logger.info("media: removing %s in its worker: %s", participant_id, exc)
        self._emit(PeerClosed("peer_closed", participant_id, reason))

    def subscribe(self, participant_id: str, source_id: str,
                  mid: str | None = None) -> SinkProxy:
        peer = self.peer(participant_id)
        source = self._sources.get(source_id)
        if source is None or source.closed:
            raise MediaError("unknown_source", f"no source {source_id!r}")
        if mid is not None:
            found = peer._sinks.get(mid)
            if found is None:
                raise MediaError("unknown_slot", f"{participant_id!r} has no slot {mid!r}")
            sink = found
        else:
            already = [s for s in peer._sinks.values() if s.source is source]
            if already:
                return already[0]
            free = [s for s in peer._sinks.values() if s.source is None and not s.closed
                    and s.kind == source.kind and s.carries(source.codec)]
            if not free:
                raise MediaError("no_free_slot", f"{participant_id!r} has no free "
                                                 f"{source.kind} slot for {source.codec}")
            sink = free[0]
        if sink.closed:
            raise MediaError("peer_closed", "the outgoing stream is closed")
        if source.kind != sink.kind:
            raise MediaError("kind_mismatch",
                             f"cannot send {source.kind} source on a {sink.kind} stream")
        if not sink.carries(source.codec):
            raise MediaError("codec_mismatch", f"{source.codec} was not negotiated on "
                                               f"stream {sink.mid}")
        if sink.source is not source:
            self._assign(peer, sink, source)
            assert peer.worker is not None
            peer.worker.process.send("subscribe", room=self.name, participant_id=participant_id,
                                     source_id=source_id, mid=sink.mid)
        return sink

    def unsubscribe(self, participant_id: str, mid: str) -> None:
        peer = self.peer(participant_id)
        sink = peer._sinks.get(mid)
        if sink is None:
            raise MediaError("unknown_slot", f"{participant_id!r} has no slot {mid!r}")
        if sink.source is not None:
            self._assign(peer, sink, None)
            assert peer.worker is not None
            peer.worker.process.send("unsubscribe", room=self.name,
                                     participant_id=participant_id, mid=mid)

    def slots(self, participant_id: str) -> list[SlotInfo]:
        return self.peer(participant_id).slots()

    def request_keyframe(self, source_id: str) -> None:
        source = self._sources.get(source_id)
        if source is None:
            raise MediaError("unknown_source", f"no source {source_id!r}")
        source.request_keyframe()

    def stats(self) -> dict[str, object]:
        return {
            "peers": len(self._peers),
            "sources": {sid: {"sinks": len(s.sinks), **_fields(s.stats)}
                        for sid, s in self._sources.items()},
            "sinks": {f"{pid}:{mid}": _fields(sink.stats)
                      for pid, p in self._peers.items() for mid, sink in p._sinks.items()},
            "forwards": len(self._forwards),
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(self.remove_peer(pid) for pid in list(self._peers)),
                             return_exceptions=True)
        for key in list(self._forwards):
            self._stop(key)
        for source in list(self._sources.values()):
            self._end_source(source)
        for worker in self.pool.workers:
            worker.process.send("close_room", room=self.name)
        self.pool.unregister(self.name, self)

    async def wait_sources(self, peer: PeerProxy, source_ids: list[str]) -> None:
        """Until the sources a worker reported for ``peer`` have come up its link."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SOURCES_WAIT_S
        while not peer.closed and any(s not in self._sources for s in source_ids):
            left = deadline - loop.time()
            if left <= 0:
                logger.warning("media: sources of %s did not come up the link",
                               peer.participant_id)
                return
            self._added.clear()
            try:
                await asyncio.wait_for(self._added.wait(), left)
            except TimeoutError:
                pass

    # --- what the pool tells ------------------------------------------------------------

    def source_added(self, source: Source, worker: WorkerHandle) -> None:
        peer = self._peers.get(source.participant_id)
        if self._closed or peer is None or peer.worker is not worker or \
                source.source_id in self._sources:
            return  # a late announcement of a peer already gone: its "E" follows
        self._sources[source.source_id] = source
        self._origin[source.source_id] = worker
        peer._sources[source.source_id.rsplit(":", 1)[1]] = source
        self._added.set()
        self._emit(SourceAdded("source_added", source.source_id, source.participant_id,
                               source.kind, str(source.codec)))

    def source_ended(self, source: Source) -> None:
        if self._sources.get(source.source_id) is source:
            self._end_source(source)
        else:
            source.close()

    def worker_event(self, worker: WorkerHandle, message: dict[str, Any]) -> None:
        pid = str(message.get("participant_id", ""))
        peer = self._peers.get(pid)
        if peer is None or peer.worker is not worker:
            return
        kind = message.get("event")
        if kind == "slot_idle":
            sink = peer._sinks.get(str(message.get("mid")))
            if sink is None:
                return
            reason = str(message.get("reason"))
            if reason == "failed":
                sink.closed = True
            current = sink.source.source_id if sink.source is not None else None
            if current is not None and current == message.get("source_id"):
                self._assign(peer, sink, None)
            elif reason != "failed":
                return
            self._emit(SlotIdle("slot_idle", pid, sink.mid, current, reason))
        elif kind == "peer_closed" and message.get("reason") == "failed":
            self._peers.pop(pid, None)
            self._drop(peer)
            self._emit(PeerClosed("peer_closed", pid, "failed"))

    def worker_stats(self, worker: WorkerHandle, data: dict[str, Any]) -> None:
        for pid, slots in (data.get("sinks") or {}).items():
            peer = self._peers.get(pid)
            if peer is None or peer.worker is not worker:
                continue
            for mid, values in slots.items():
                sink = peer._sinks.get(mid)
                if sink is not None:
                    sink.mirror(values)
        for sid, values in (data.get("sources") or {}).items():
            source = self._sources.get(sid)
            if source is not None and self._origin.get(sid) is worker:
                for name, value in values.items():
                    if hasattr(source.stats, name):
                        setattr(source.stats, name, value)

    def worker_lost(self, worker: WorkerHandle) -> None:
        """The worker died: its participants' peers failed; what went down its link is
        forgotten (the pool closes the link, which ends the sources that came up it)."""
        for pid, peer in [(k, p) for k, p in self._peers.items() if p.worker is worker]:
            del self._peers[pid]
            self._drop(peer)
            self._emit(PeerClosed("peer_closed", pid, "failed"))
        for key in [k for k, f in self._forwards.items() if f.worker is worker]:
            forward = self._forwards.pop(key)
            if forward.timer is not None:
                forward.timer.cancel()

    # --- internals ----------------------------------------------------------------------

    def _drop(self, peer: PeerProxy) -> None:
        """Forget a peer here: its slots let go of their sources, its sources end."""
        peer._closed = True
        if peer.worker is not None:
            peer.worker.peers -= 1
        for sink in peer._sinks.values():
            if sink.source is not None:
                self._assign(peer, sink, None)
        for source in list(peer._sources.values()):
            self._end_source(source)

    def _assign(self, peer: PeerProxy, sink: SinkProxy, source: Source | None) -> None:
        """Point ``sink`` at ``source``, keeping the downlink forwards in step."""
        old, sink.source = sink.source, source
        if source is None:
            sink.sending = False
        worker = peer.worker
        if worker is None:
            return
        user = (peer.participant_id, sink.mid)
        if old is not None:
            forward = self._forwards.get((id(worker), old.source_id))
            if forward is not None:
                forward.users.discard(user)
                if not forward.users and forward.timer is None:
                    forward.timer = asyncio.get_running_loop().call_later(
                        FORWARD_GRACE_S, self._stop, (id(worker), old.source_id))
        if source is not None and self._origin.get(source.source_id) is not worker:
            key = (id(worker), source.source_id)
            forward = self._forwards.get(key)
            if forward is None:
                index = worker.endpoint.sender.forward(source, tag=self.name)
                forward = self._forwards[key] = _Forward(worker, source, index)
            forward.users.add(user)
            if forward.timer is not None:
                forward.timer.cancel()
                forward.timer = None

    def _stop(self, key: tuple[int, str]) -> None:
        forward = self._forwards.pop(key, None)
        if forward is None:
            return
        if forward.timer is not None:
            forward.timer.cancel()
        if forward.worker.alive:
            forward.worker.endpoint.sender.stop(forward.index)

    def _end_source(self, source: Source) -> None:
        sid = source.source_id
        if self._sources.get(sid) is source:
            del self._sources[sid]
            self._origin.pop(sid, None)
        owner = self._peers.get(source.participant_id)
        mid = sid.rsplit(":", 1)[1]
        if owner is not None and owner._sources.get(mid) is source:
            del owner._sources[mid]
        source.close()  # the downlink sinks send "E" themselves
        for key in [k for k in self._forwards if k[1] == sid]:
            forward = self._forwards.pop(key)
            if forward.timer is not None:
                forward.timer.cancel()
        for peer in self._peers.values():
            for sink in peer._sinks.values():
                if sink.source is source:
                    self._assign(peer, sink, None)
                    self._emit(SlotIdle("slot_idle", peer.participant_id, sink.mid, sid,
                                        "source_ended"))
        self._emit(SourceRemoved("source_removed", sid, source.participant_id))

    def _emit(self, event: MediaEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("media event handler failed on %s", event.type)


def _fields(stats: object) -> dict[str, object]:
    return {name: getattr(stats, name) for name in getattr(stats, "__slots__", ())}
