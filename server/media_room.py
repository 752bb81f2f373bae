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
from media.renditions import (
    HD,
    HD_LEVEL,
    RENDITIONS,
    LinkQuality,
    level_of,
    pick,
    pick_grid,
    preference,
)
from media.speakers import ActiveSpeakers

from .ws.protocol_media import MediaClosed, MediaMain, MediaSlots
from .ws.session import Session

log = logging.getLogger(__name__)

VIDEO_SEND_ROLES = ("camera-hd", "camera", "camera-low", "camera-thumb", "screen")
SPEAKER_PERIOD_S = 0.3
LINK_PERIOD_S = 0.5
LIVE_S = 2.0
"""A video source is *live* while packets arrived in the last LIVE_S seconds: a rendition or
screen m-line negotiated with no track (``replaceTrack(null)``: the browser's ``camera-hd``
when it is not on the main screen) is never chosen while a live one is published."""
SCREEN = "screen"


@dataclass(frozen=True)
class ShareView:
    """The meeting's content share as the media policy sees it (``share.changed``)."""

    session: str | None
    "The sharer's session key (its media participant id); None = any session of the sharer."
    point_code: str | None
    user_id: int | None
    label: str
    layout: str
    "``main``: the screen replaces the main slot; ``beside``: it fills the ``content`` slots."


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
        if role in ("main", "audio", "grid", "content"):
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
        self.share: ShareView | None = None
        self._packets: dict[str, tuple[int, float]] = {}
        self.live: frozenset[str] = frozenset()
        "Video sources with packets in the last LIVE_S seconds (updated by the ticker)."
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

    def set_share(self, share: ShareView | None) -> None:
        """A share started, changed layout or ended (from the floor domain's events)."""
        if share == self.share:
            return
        self.share = share
        self.reassign()

    def sharer(self) -> Member | None:
        """The member whose ``screen`` source is the meeting's shared content: the sharer's
        session when it is on this node and is who the share says (same user or point)."""
        share = self.share
        if share is None:
            return None
        for member in self.members.values():
            if share.session is not None and member.key != share.session:
                continue
            principal = member.session.principal
            user_id = principal.user.id if principal.user is not None else None
            if user_id != share.user_id or member.point_code != share.point_code:
                continue
            if SCREEN in member.published():
                return member
        return None

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

    def main_video(self) -> str | None:
        """The source the main screen shows now, at its best (for a recording): the shared
        screen while a share is laid out on the main screen (whoever shares, with or without a
        point), else the main point's best *live* camera rendition (``camera-hd`` while it
        sends it)."""
        share = self.share
        sharer = self.sharer()
        if share is not None and share.layout == "main" and sharer is not None:
            return sharer.published().get(SCREEN)
        main = self.publisher_of(self.main.point_code)
        if main is None:
            return None
        chosen = pick(self._live_only(main.published()), preference(HD_LEVEL))
        return chosen[1] if chosen else None

    def _live_only(self, published: dict[str, str]) -> dict[str, str]:
        """The live ones of a member's published video sources (all of them when none is
        live yet: a fresh publisher's first packets are on their way)."""
        live = {r: s for r, s in published.items() if s in self.live}
        return live or published

    def assign(self, member: Member) -> None:
        desired: dict[str, tuple[str | None, Member | None, str | None]] = {}
        main = self.publisher_of(self.main.point_code)
        share = self.share
        sharer = self.sharer()
        screen = sharer.published().get(SCREEN) if sharer is not None else None
        for mid in member.recv_mids("main"):
            chosen = None
            if share is not None and share.layout == "main" and screen is not None:
                owner = sharer if sharer is not member else None
                desired[mid] = (screen, owner, SCREEN) if owner else (None, None, None)
                continue
            if main is not None and main is not member:
                chosen = pick(self._live_only(main.published()), preference(member.link.level))
            desired[mid] = (chosen[1], main, chosen[0]) if chosen else (None, None, None)
        for mid in member.recv_mids("content"):
            if (share is not None and share.layout == "beside" and screen is not None
                    and sharer is not member):
                desired[mid] = (screen, sharer, SCREEN)
            else:
                desired[mid] = (None, None, None)
        grid_mids = member.recv_mids("grid")[:self.max_grid] if member.staff else []
        size = min(member.grid_size, len(grid_mids))
        page = self._grid_members()[member.grid_page * size:(member.grid_page + 1) * size] \
            if size else []
        for i, mid in enumerate(grid_mids):
            chosen = pick_grid(self._live_only(page[i].published())) if i < len(page) else None
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

    def recording_sources(self) -> tuple[str | None, list[str]]:
        """What a recording carries (docs/recording.md): the main-screen video
        (:meth:`main_video`: the shared screen when a share is on the main screen, else the
        main point's best live camera rendition) and the audio a listener hears: the main
        point's microphone, then the active speakers, muted points left out (at most
        ``audio_slots`` + 1 sources)."""
        code = self.main.point_code
        video = self.main_video()
        main = self.publisher_of(code)
        audio: list[str] = []
        speaker = main or next((m for m in self.members.values()
                                if code is not None and m.point_code == code
                                and "mic" in m.published()), None)
        if speaker is not None and "mic" in speaker.published():
            audio.append(speaker.published()["mic"])
        audio.extend(sid for sid in self.speakers.ranked() if sid not in audio)
        audio = [sid for sid in audio if (o := self._owner(sid)) is not None
                 and (o.point_code is None or o.point_code not in self.muted)]
        return video, audio[:self.audio_slots + 1]

    # ------------------------------------------------------------ periodic work

    async def _tick(self) -> None:
        elapsed = 0.0
        while True:
            await asyncio.sleep(SPEAKER_PERIOD_S)
            elapsed += SPEAKER_PERIOD_S
            try:
                changed = self.speakers.update()
                changed = self._liveness() or changed
                if elapsed >= LINK_PERIOD_S:
                    elapsed = 0.0
                    changed = self._links() or changed
                if changed:
                    self.reassign()
            except Exception:  # keep ticking: one bad round must not stop the policy
                log.exception("media: periodic policy of meeting %d failed", self.meeting_id)

    def _liveness(self, now: float | None = None) -> bool:
        """Update :attr:`live` from the video sources' packet counters; True when it changed."""
        now = asyncio.get_running_loop().time() if now is None else now
        seen: dict[str, tuple[int, float]] = {}
        live: set[str] = set()
        for source_id, source in self.room.sources.items():
            if source.kind != "video":
                continue
            packets = source.stats.packets
            before = self._packets.get(source_id)
            at = now if before is None or packets != before[0] else before[1]
            if before is None and packets == 0:
                at = now - LIVE_S  # negotiated, never sent: not live
            seen[source_id] = (packets, at)
            if now - at < LIVE_S:
                live.add(source_id)
        self._packets = seen
        frozen = frozenset(live)
        if frozen == self.live:
            return False
        self.live = frozen
        return True

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
            if role not in RENDITIONS:
                continue  # a shared screen: one rendition, nothing to adapt
            higher = None
            if RENDITIONS.index(role) > 0:
                higher = published.get(RENDITIONS[RENDITIONS.index(role) - 1])
            hd = published.get(HD)
            min_level = HD_LEVEL if hd is not None and hd in self.live else 0
            stats = sink.stats
            if member.link.observe(reports=stats.reports, fraction_lost=stats.fraction_lost,
                                   remb_bps=stats.remb_bps,
                                   current_bps=rates.get(sink.source.source_id),
                                   higher_bps=rates.get(higher) if higher else None,
                                   max_level=max((level_of(r) for r in published
                                                  if r in RENDITIONS), default=0),
                                   min_level=min_level):
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
