"""The media of one meeting on this node: a ``media.Room`` with one peer per WebSocket
session that offered, and the policy deciding what each session's receive slots carry.

- ``main`` slots: the main-screen point's camera, at the rendition the subscriber's link
  allows (``media.renditions``); ``grid`` slots (staff): a page of publishing points'
  thumbnails; ``audio`` slots: the main-screen point's microphone first, then the active
  speakers (``media.speakers``), never the session's own audio nor a muted point's.
- Changes are applied with ``Room.subscribe`` (video switches at the next keyframe) and told
  to the session as ``media.slots``.
Everything runs on the event loop; the tasks this object starts are its own and end in
:meth:`MeetingMedia.close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media import MediaError, MediaEvent, Peer, PeerClosed, Room, SourceAdded, SourceRemoved
from media.renditions import GRID_PREFERENCE, RENDITIONS, LinkQuality, pick, preference
from media.speakers import ActiveSpeakers

from .ws.protocol_media import MediaClosed, MediaMain, MediaSlots
from .ws.session import Session

log = logging.getLogger(__name__)

VIDEO_SEND_ROLES = ("camera", "camera-low", "camera-thumb", "screen")
SPEAKER_PERIOD_S = 0.3
LINK_PERIOD_S = 0.5


@dataclass(frozen=True)
class MainScreen:
    point_code: str | None
    label: str
    reason: str


@dataclass(eq=False)
class Member:
    """One session's media in the meeting."""

    session: Session
    peer: Peer
    point_code: str | None
    label: str
    staff: bool
    roles: dict[str, str] = field(default_factory=dict)
    """Role of each m-line by mid (send roles and receive roles)."""
    grid_page: int = 0
    grid_size: int = 9
    link: LinkQuality = field(default_factory=LinkQuality)
    answered: bool = False
    last_slots: list[dict[str, Any]] | None = None
    counted: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Forwarded packets/bytes already added to the metrics, per slot mid."""

    @property
    def key(self) -> str:
        return self.session.key

    def published(self) -> dict[str, str]:
        """Published sources by role (``camera``, ``mic``, ...): role → source id."""
        out: dict[str, str] = {}
        for mid, source in self.peer.sources.items():
            role = self.roles.get(mid) or ("camera" if source.kind == "video" else "mic")
            out.setdefault(role, source.source_id)
        return out

    def recv_mids(self, role: str) -> list[str]:
        return [mid for mid in self.peer.sinks if self.role_of_slot(mid) == role]

    def role_of_slot(self, mid: str) -> str:
        sink = self.peer.sinks.get(mid)
        role = self.roles.get(mid)
        if role in ("main", "audio", "grid"):
            return role
        return "audio" if sink is not None and sink.kind == "audio" else "main"


class MeetingMedia:
    """Peers and slot assignments of one meeting (create with :meth:`start`)."""

    def __init__(self, meeting_id: int, room: Room, main: MainScreen, *, audio_slots: int,
                 max_grid: int, on_closed: Callable[[MeetingMedia, Member, str], None]) -> None:
        self.meeting_id = meeting_id
        self.room = room
        self.main = main
        self.audio_slots = audio_slots
        self.max_grid = max_grid
        self.members: dict[str, Member] = {}
        self.muted: set[str] = set()
        self.speakers = ActiveSpeakers(size=audio_slots + 1)
        self._on_closed = on_closed
        self._tasks: set[asyncio.Task[None]] = set()
        self._dirty = False
        self._closed = False
        self._rates: dict[str, float] = {}
        self._ticker = asyncio.create_task(self._tick(), name=f"media-tick {meeting_id}")

    # ------------------------------------------------------------ members

    def add(self, member: Member) -> None:
        self.members[member.key] = member

    async def remove(self, key: str, reason: str = "removed") -> Member | None:
        member = self.members.pop(key, None)
        if member is None:
            return None
        await self.room.remove_peer(key, reason)
        self.reassign()
        return member

    @property
    def empty(self) -> bool:
        return not self.members

    def publisher_of(self, point_code: str | None) -> Member | None:
        """The session publishing a camera for ``point_code`` (the first that joined)."""
        if point_code is None:
            return None
        for member in self.members.values():
            if member.point_code == point_code and any(
                    r in member.published() for r in RENDITIONS):
                return member
        return None

    # ------------------------------------------------------------ events

    def on_media_event(self, event: MediaEvent) -> None:
        """``media.Room`` events (synchronous; heavy work is deferred)."""
        if isinstance(event, SourceAdded):
            source = self.room.sources.get(event.source_id)
            if source is not None and source.kind == "audio":
                self.speakers.track(source)
            self.schedule()
        elif isinstance(event, SourceRemoved):
            self.speakers.forget(event.source_id)
            self.schedule()
        elif isinstance(event, PeerClosed):
            if event.reason == "failed" and event.participant_id in self.members:
                self._spawn(self._failed(event.participant_id))
        else:  # SlotIdle: the slot's source ended or its output failed
            self.schedule()

    async def _failed(self, key: str) -> None:
        member = await self.remove(key, "failed")
        if member is not None:
            member.session.reply(MediaClosed("failed"))
            self._on_closed(self, member, "failed")

    def set_main(self, main: MainScreen) -> None:
        if main == self.main:
            return
        self.main = main
        message = MediaMain(main.point_code, main.label, main.reason)
        for member in self.members.values():
            if member.answered:
                member.session.reply(message)
        self.reassign()

    def set_muted(self, point_code: str, muted: bool) -> None:
        if muted:
            self.muted.add(point_code)
        else:
            self.muted.discard(point_code)
        self.reassign()

    # ------------------------------------------------------------ assignment

    def schedule(self) -> None:
        """Reassign soon (coalesces the bursts of events one offer or departure causes)."""
        if not self._dirty and not self._closed:
            self._dirty = True
            asyncio.get_running_loop().call_soon(self.reassign)

    def reassign(self) -> None:
        self._dirty = False
        if self._closed:
            return
        for member in list(self.members.values()):
            try:
                self.assign(member)
            except Exception:  # one session's slots must not stop the others'
                log.exception("media: assigning slots of %s failed", member.key)

    def _owner(self, source_id: str) -> Member | None:
        return self.members.get(source_id.rsplit(":", 1)[0])

    def _audio_order(self, member: Member) -> list[str]:
        """Audio sources this member should hear, most important first."""
        order: list[str] = []
        main = self.publisher_of(self.main.point_code) or next(
            (m for m in self.members.values()
             if m.point_code is not None and m.point_code == self.main.point_code
             and "mic" in m.published()), None)
        if main is not None and main is not member:
            mic = main.published().get("mic")
            if mic is not None:
                order.append(mic)
        for sid in self.speakers.ranked():
            owner = self._owner(sid)
            if owner is None or owner is member or sid in order:
                continue
            order.append(sid)
        return [sid for sid in order
                if (o := self._owner(sid)) is not None and o.point_code not in self.muted
                and (member.point_code is None or o.point_code != member.point_code)]

    def _grid_members(self) -> list[Member]:
        found = [m for m in self.members.values() if any(r in m.published() for r in RENDITIONS)]
        return sorted(found, key=lambda m: (m.point_code or "~", m.label, m.key))

    def assign(self, member: Member) -> None:
        desired: dict[str, tuple[str | None, Member | None, str | None]] = {}
        main = self.publisher_of(self.main.point_code)
        for mid in member.recv_mids("main"):
            chosen = None
            if main is not None and main is not member:
                chosen = pick(main.published(), preference(member.link.level))
            desired[mid] = (chosen[1], main, chosen[0]) if chosen else (None, None, None)
        grid_mids = member.recv_mids("grid")[:self.max_grid] if member.staff else []
        size = min(member.grid_size, len(grid_mids))
        page = self._grid_members()[member.grid_page * size:(member.grid_page + 1) * size] \
            if size else []
        for i, mid in enumerate(grid_mids):
            chosen = pick(page[i].published(), GRID_PREFERENCE) if i < len(page) else None
            desired[mid] = (chosen[1], page[i], chosen[0]) if chosen else (None, None, None)
        audio_mids = member.recv_mids("audio")[:self.audio_slots]
        wanted = self._audio_order(member)[:len(audio_mids)]
        sinks = member.peer.sinks
        current: dict[str, str | None] = {}
        for mid in audio_mids:
            source = sinks[mid].source
            current[mid] = source.source_id if source is not None else None
        free = [mid for mid in audio_mids if current[mid] not in wanted]
        for mid in audio_mids:
            if current[mid] in wanted:
                desired[mid] = (current[mid], self._owner(current[mid] or ""), None)
        for sid in wanted:
            if sid not in current.values() and free:
                desired[free.pop(0)] = (sid, self._owner(sid), None)
        for mid in free:
            desired.setdefault(mid, (None, None, None))
        self._apply(member, desired)

    def _apply(self, member: Member,
               desired: dict[str, tuple[str | None, Member | None, str | None]]) -> None:
        sinks = member.peer.sinks
        slots: list[dict[str, Any]] = []
        for mid, sink in sinks.items():
            if mid not in desired:
                desired[mid] = (None, None, None)
            source_id, owner, rendition = desired[mid]
            have = sink.source.source_id if sink.source is not None else None
            if source_id != have:
                try:
                    if source_id is not None:
                        self.room.subscribe(member.key, source_id, mid)
                    elif have is not None:
                        self.room.unsubscribe(member.key, mid)
                except MediaError as exc:
                    log.info("media: slot %s of %s stays empty: %s", mid, member.key, exc)
                    source_id = owner = rendition = None
                    if have is not None:
                        self.room.unsubscribe(member.key, mid)
            slots.append({
                "mid": mid, "kind": sink.kind, "role": member.role_of_slot(mid),
                "point_code": owner.point_code if owner and source_id else None,
                "label": owner.label if owner and source_id else None,
                "rendition": rendition if source_id else None,
            })
        if member.answered and slots != member.last_slots:
            member.last_slots = slots
            member.session.reply(MediaSlots(slots))

    def main_rendition(self, member: Member) -> tuple[str | None, bool]:
        """The rendition carried by the member's first main slot, and whether it is sending."""
        for slot in member.last_slots or ():
            if slot["role"] == "main":
                sink = member.peer.sinks.get(slot["mid"])
                return slot["rendition"], bool(sink is not None and sink.sending)
        return None, False

    # ------------------------------------------------------------ periodic work

    async def _tick(self) -> None:
        elapsed = 0.0
        while True:
            await asyncio.sleep(SPEAKER_PERIOD_S)
            elapsed += SPEAKER_PERIOD_S
            try:
                changed = self.speakers.update()
                if elapsed >= LINK_PERIOD_S:
                    elapsed = 0.0
                    changed = self._links() or changed
                if changed:
                    self.reassign()
            except Exception:  # keep ticking: one bad round must not stop the policy
                log.exception("media: periodic policy of meeting %d failed", self.meeting_id)

    def _links(self) -> bool:
        """Feed each subscriber's main-slot reports to its link quality."""
        changed = False
        rates = self._source_rates()
        for member in self.members.values():
            mids = member.recv_mids("main")
            sink = member.peer.sinks.get(mids[0]) if mids else None
            if sink is None or sink.source is None:
                continue
            owner = self._owner(sink.source.source_id)
            published = owner.published() if owner else {}
            role = next((r for r, sid in published.items() if sid == sink.source.source_id), None)
            higher = None
            if role in RENDITIONS and RENDITIONS.index(role) > 0:
                higher = published.get(RENDITIONS[RENDITIONS.index(role) - 1])
            stats = sink.stats
            if member.link.observe(reports=stats.reports, fraction_lost=stats.fraction_lost,
                                   remb_bps=stats.remb_bps,
                                   current_bps=rates.get(sink.source.source_id),
                                   higher_bps=rates.get(higher) if higher else None,
                                   max_level=max((RENDITIONS.index(r) for r in published
                                                  if r in RENDITIONS), default=0)):
                log.info("media: %s link level %d (loss %.2f, remb %s)", member.key,
                         member.link.level, stats.fraction_lost or 0.0, stats.remb_bps)
                changed = True
        return changed

    def _source_rates(self) -> dict[str, float]:
        return self._rates

    def note_rates(self, rates: dict[str, float]) -> None:
        """Bitrates (bit/s) per source measured by the stats loop."""
        self._rates = rates

    # ------------------------------------------------------------ lifecycle

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str = "meeting_closed") -> list[Member]:
        """Close every peer (sessions are told ``media.closed``); safe to call twice."""
        if self._closed:
            return []
        self._closed = True
        self._ticker.cancel()
        await asyncio.gather(self._ticker, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        members, self.members = list(self.members.values()), {}
        for member in members:
            member.session.reply(MediaClosed(reason))
        self.speakers.close()
        await self.room.close()
        return members
