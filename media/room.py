"""The forwarding router of one meeting (phòng họp): which participant's slot carries which
source. Owns its peers; tells the signalling layer what changed through events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from media.aiortc_hooks import check_aiortc_internals
from media.config import MediaConfig
from media.errors import MediaError
from media.peer import Peer, SlotInfo
from media.sink import Sink
from media.source import Source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceAdded:
    """A participant (or a remote feeder) started publishing."""

    type: Literal["source_added"]
    source_id: str
    participant_id: str
    kind: str
    codec: str


@dataclass(frozen=True)
class SourceRemoved:
    """A source ended (publisher left or unpublished)."""

    type: Literal["source_removed"]
    source_id: str
    participant_id: str


@dataclass(frozen=True)
class SlotIdle:
    """A participant's slot stopped carrying a source: ``reason`` is ``source_ended`` or
    ``failed`` (the subscriber's output broke)."""

    type: Literal["slot_idle"]
    participant_id: str
    mid: str
    source_id: str | None
    reason: str


@dataclass(frozen=True)
class PeerClosed:
    """A participant's peer connection ended (``reason``: ``failed`` or ``removed``)."""

    type: Literal["peer_closed"]
    participant_id: str
    reason: str


MediaEvent = SourceAdded | SourceRemoved | SlotIdle | PeerClosed
EventHandler = Callable[[MediaEvent], None]


class Room:
    """Peers, sources and subscriptions of one meeting. Not thread-safe; one event loop."""

    def __init__(self, config: MediaConfig | None = None, *,
                 on_event: EventHandler | None = None) -> None:
        self.config = config or MediaConfig()
        self._on_event = on_event
        self._peers: dict[str, Peer] = {}
        self._sources: dict[str, Source] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._internals_checked = False

    # --- participants -------------------------------------------------------------------

    @property
    def peers(self) -> dict[str, Peer]:
        return dict(self._peers)

    @property
    def sources(self) -> dict[str, Source]:
        return dict(self._sources)

    def peer(self, participant_id: str) -> Peer:
        peer = self._peers.get(participant_id)
        if peer is None:
            raise MediaError("unknown_participant", f"no peer for {participant_id!r}")
        return peer

    def create_peer(self, participant_id: str) -> Peer:
        """A new server-side peer for a participant; then call ``peer.accept_offer``."""
        if self._closed:
            raise MediaError("peer_closed", "the room is closed")
        if participant_id in self._peers:
            raise MediaError("duplicate_participant", f"{participant_id!r} already has a peer")
        if not self._internals_checked:
            problems = check_aiortc_internals()
            if problems:
                raise MediaError("unsupported_aiortc", "; ".join(problems)[:500])
            self._internals_checked = True
        peer = Peer(participant_id, self.config, self)
        self._peers[participant_id] = peer
        return peer

    async def remove_peer(self, participant_id: str, reason: str = "removed") -> None:
        """Close a participant's peer; its sources end and their subscribers are told."""
        peer = self._peers.pop(participant_id, None)
        if peer is None:
            return
        await peer.close()
        self._emit(PeerClosed("peer_closed", participant_id, reason))

    # --- sources from elsewhere (worker process, upstream node) -------------------------

    def add_source(self, source: Source) -> None:
        """Register a source fed by something other than a local peer."""
        if source.source_id in self._sources:
            raise MediaError("duplicate_source", f"{source.source_id!r} exists")
        self._sources[source.source_id] = source
        self._emit(SourceAdded("source_added", source.source_id, source.participant_id,
                               source.kind, str(source.codec)))

    def remove_source(self, source_id: str) -> None:
        source = self._sources.pop(source_id, None)
        if source is not None:
            source.close()
            self._emit(SourceRemoved("source_removed", source_id, source.participant_id))

    # --- subscriptions ------------------------------------------------------------------

    def subscribe(self, participant_id: str, source_id: str, mid: str | None = None) -> Sink:
        """Send ``source_id`` to ``participant_id`` on slot ``mid`` (or a free slot of the
        right kind). If the slot carries another source, it switches at the next keyframe."""
        peer = self.peer(participant_id)
        source = self._sources.get(source_id)
        if source is None or source.closed:
            raise MediaError("unknown_source", f"no source {source_id!r}")
        sinks = peer.sinks
        if mid is not None:
            sink = sinks.get(mid)
            if sink is None:
                raise MediaError("unknown_slot", f"{participant_id!r} has no slot {mid!r}")
        else:
            already = [s for s in sinks.values() if s.source is source]
            if already:
                return already[0]
            free = [s for s in sinks.values() if s.source is None and s.kind == source.kind
                    and s.params.payload_type_for(source.codec) is not None]
            if not free:
                raise MediaError("no_free_slot",
                                 f"{participant_id!r} has no free {source.kind} slot for "
                                 f"{source.codec}")
            sink = free[0]
        sink.attach(source)
        return sink

    def unsubscribe(self, participant_id: str, mid: str) -> None:
        sink = self.peer(participant_id).sinks.get(mid)
        if sink is None:
            raise MediaError("unknown_slot", f"{participant_id!r} has no slot {mid!r}")
        sink.detach()

    def slots(self, participant_id: str) -> list[SlotInfo]:
        return self.peer(participant_id).slots()

    def request_keyframe(self, source_id: str) -> None:
        source = self._sources.get(source_id)
        if source is None:
            raise MediaError("unknown_source", f"no source {source_id!r}")
        source.request_keyframe()

    # --- PeerObserver -------------------------------------------------------------------

    def source_added(self, peer: Peer, source: Source) -> None:
        self._sources[source.source_id] = source
        self._emit(SourceAdded("source_added", source.source_id, peer.participant_id,
                               source.kind, str(source.codec)))

    def source_removed(self, peer: Peer, source: Source) -> None:
        if self._sources.get(source.source_id) is source:
            del self._sources[source.source_id]
            self._emit(SourceRemoved("source_removed", source.source_id, peer.participant_id))

    def sink_event(self, peer: Peer, sink: Sink, event: str, source: Source | None) -> None:
        self._emit(SlotIdle("slot_idle", peer.participant_id, str(sink.params.mid),
                            source.source_id if source else None, event))

    def peer_failed(self, peer: Peer) -> None:
        if self._peers.get(peer.participant_id) is not peer or self._closed:
            return
        task = asyncio.get_running_loop().create_task(
            self.remove_peer(peer.participant_id, reason="failed"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lifecycle ----------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        """A snapshot for metrics and tests."""
        return {
            "peers": len(self._peers),
            "sources": {sid: {"sinks": len(s.sinks), **_fields(s.stats)}
                        for sid, s in self._sources.items()},
            "sinks": {f"{pid}:{mid}": _fields(sink.stats)
                      for pid, p in self._peers.items() for mid, sink in p.sinks.items()},
        }

    async def close(self) -> None:
        """Close every peer and source. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # Removals already under way are let finish (cancelling one would leave a peer
        # half-closed and no longer in the table).
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for participant_id in list(self._peers):
            await self.remove_peer(participant_id)
        for source_id in list(self._sources):
            self.remove_source(source_id)

    def _emit(self, event: MediaEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("media event handler failed on %s", event.type)


def _fields(stats: object) -> dict[str, object]:
    return {name: getattr(stats, name) for name in getattr(stats, "__slots__", ())}
