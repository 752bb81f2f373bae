"""The participant side of :mod:`media.remote`: a peer living in a media worker process
(:class:`PeerProxy`) and its receive slots (:class:`SinkProxy`), with the calls and fields
the signalling layer and the slot policy use on :class:`media.Peer` / :class:`media.Sink`.
Sink counters and ``sending`` mirror the worker's (its periodic ``stats`` event)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media.codecs import CodecSpec
from media.errors import MediaError
from media.peer import SlotInfo
from media.sink import SinkStats
from media.source import Source

if TYPE_CHECKING:
    from media.pool import WorkerHandle
    from media.remote import RoomProxy


class SinkProxy:
    """A subscriber's receive slot in a worker, as the policy sees it."""

    def __init__(self, peer: PeerProxy, mid: str, kind: str, codecs: tuple[CodecSpec, ...]):
        self.peer = peer
        self.mid = mid
        self.kind = kind
        self.codecs = codecs
        self.source: Source | None = None
        "The source assigned (being sent, or about to be at its next keyframe)."
        self.stats = SinkStats()
        self.sending = False
        self.closed = False

    def carries(self, codec: CodecSpec) -> bool:
        return any(c.can_carry(codec) for c in self.codecs)

    def on_keyframe_request(self) -> None:
        worker = self.peer.worker
        if worker is not None and self.source is not None:
            worker.process.send("keyframe", room=self.peer.room.name,
                                participant_id=self.peer.participant_id, mid=self.mid)

    def mirror(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name == "sending":
                self.sending = bool(value) and self.source is not None
            elif hasattr(self.stats, name):
                setattr(self.stats, name, value)

    def __repr__(self) -> str:
        return f"SinkProxy({self.peer.participant_id}:{self.mid}, source={self.source!r})"


class PeerProxy:
    """A participant whose aiortc peer lives in a worker (chosen at the first offer)."""

    def __init__(self, room: RoomProxy, participant_id: str) -> None:
        self.room = room
        self.participant_id = participant_id
        self.worker: WorkerHandle | None = None
        self._sources: dict[str, Source] = {}
        self._sinks: dict[str, SinkProxy] = {}
        self._broken = False
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> bool:
        return self._broken

    @property
    def sources(self) -> dict[str, Source]:
        return dict(self._sources)

    @property
    def sinks(self) -> dict[str, SinkProxy]:
        return dict(self._sinks)

    @property
    def worker_pid(self) -> int | None:
        return self.worker.pid if self.worker is not None else None

    def slots(self) -> list[SlotInfo]:
        return [SlotInfo(mid, s.kind, tuple(c.name for c in s.codecs),
                         s.source.source_id if s.source else None)
                for mid, s in self._sinks.items()]

    async def accept_offer(self, sdp: str) -> str:
        if self._closed:
            raise MediaError("peer_closed", "the peer connection is closed")
        if self.worker is None:
            await self.room.pool.start()
            if self._closed:
                raise MediaError("peer_closed", "the peer connection is closed")
            self.worker = self.room.pool.acquire()
            self.worker.peers += 1
        worker = self.worker
        try:
            result = await worker.process.call("offer", room=self.room.name,
                                               participant_id=self.participant_id, sdp=sdp)
        except MediaError as exc:
            details = getattr(exc, "details", {})
            if details.get("broken") or not worker.alive:
                self._broken = True
            raise
        if self._closed:
            raise MediaError("peer_closed", "the peer connection closed during the offer")
        for slot in result["slots"]:
            mid = str(slot["mid"])
            if mid not in self._sinks:
                codecs = tuple(CodecSpec(**c) for c in slot["codecs"])
                self._sinks[mid] = SinkProxy(self, mid, str(slot["kind"]), codecs)
        await self.room.wait_sources(self, [str(s) for s in result["sources"]])
        return str(result["sdp"])

    async def add_ice_candidate(self, candidate: str | None, sdp_mid: str | None = None,
                                sdp_mline_index: int | None = None) -> None:
        if self._closed:
            raise MediaError("peer_closed", "the peer connection is closed")
        if self.worker is None:
            raise MediaError("invalid_state", "no offer yet")
        await self.worker.process.call("candidate", room=self.room.name,
                                       participant_id=self.participant_id,
                                       candidate=candidate, mid=sdp_mid)

    def __repr__(self) -> str:
        return f"PeerProxy({self.participant_id!r}, worker={self.worker_pid})"
