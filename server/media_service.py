"""The media service of one node: wires the SFU (``media/``) to the WebSocket sessions.

One :class:`server.media_room.MeetingMedia` per meeting with sessions that sent
``media.offer``, created on the first offer and closed when its last peer goes, when the
meeting closes, or at shutdown. Each keeps a bus subscription to the meeting's topic for
``main_screen.changed`` / ``point.muted`` / ``point.removed`` (published by the conduct
domain, ``meetings/floor.py``). A session's media participant id is its session key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from media import IceServer, MediaConfig, MediaError
from media.aiortc_hooks import use_host_addresses
from media.loop_monitor import LoopMonitor, LoopReport, NodeLoad
from media.pool import WorkerPool
from media.remote import RoomProxy
from meetings.bus import Subscription
from meetings.calendar import topic
from meetings.errors import Forbidden, NotFound
from meetings.models import Principal
from meetings.permissions import Action, MeetingScope, allowed, require
from meetings.share import Share

from .config import MediaSettings
from .keys import METRICS, SERVICES
from .media_room import MainScreen, MeetingMedia, Member, ShareView
from .media_stats import StatsState, collect, forget, invited_points
from .metrics import Metrics
from .services import Services
from .ws import HUB
from .ws.fields import MessageId, ProtocolError
from .ws.hub import Hub
from .ws.protocol_media import (
    MediaAnswer,
    MediaCandidate,
    MediaClosed,
    MediaGrid,
    MediaKeyframe,
    MediaLeave,
    MediaMain,
    MediaOffer,
    MediaStats,
    media_error,
)
from .ws.session import Session

log = logging.getLogger(__name__)

MediaMessage = MediaOffer | MediaCandidate | MediaGrid | MediaKeyframe | MediaLeave


def media_config(settings: MediaSettings) -> MediaConfig:
    """The media core's settings from the ``media`` config section."""
    servers = tuple(IceServer(url, settings.ice_username or None, settings.ice_credential or None)
                    for url in settings.server_urls)
    return MediaConfig(ice_servers=servers, host_addresses=settings.addresses,
                       max_sdp_bytes=settings.max_sdp_bytes, max_m_lines=settings.max_m_lines)


def offer_sends(sdp: str) -> bool:
    """Whether any m-line of an (untrusted) offer sends media (``sendonly``/``sendrecv``,
    the default). Only decides the permission check; media/ validates the SDP itself."""
    direction: str | None = None
    sends = False
    in_media = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if in_media and direction in (None, "sendrecv", "sendonly"):
                sends = True
            in_media, direction = True, None
        elif in_media and line.strip() in ("a=sendrecv", "a=sendonly", "a=recvonly",
                                           "a=inactive"):
            direction = line.strip()[2:]
    return sends or (in_media and direction in (None, "sendrecv", "sendonly"))


@dataclass(eq=False)
class _Meeting:
    media: MeetingMedia
    subscription: Subscription
    relay: asyncio.Task[None]
    stats: StatsState


class MediaService:
    """Media signalling for the sessions of this node (see docs/media.md)."""

    def __init__(self, services: Services, hub: Hub, metrics: Metrics) -> None:
        self.services = services
        self.hub = hub
        self.metrics = metrics
        self.settings = services.config.media
        self.config = media_config(self.settings)
        self._meetings: dict[int, _Meeting] = {}
        self._lock = asyncio.Lock()
        self._restore_hosts = use_host_addresses(self.config.host_addresses)
        self._stats_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.pool: WorkerPool | None = None
        "Media worker processes (``media.workers``), started on the first ``media.offer``."
        self.load = NodeLoad()
        "Event-loop stalls of this process and its workers between two stats rounds."
        self._loop_monitor = LoopMonitor(lambda r: self._loop_report("server", r))
        "This process's loop lag: it relays every packet that crosses between workers."
        self.closed = False

    async def start(self) -> None:
        self.hub.rooms.leave_hooks.append(self.session_left)
        self.hub.resume_hooks.append(self.session_resumed)
        self._stats_task = asyncio.create_task(self._stats_loop(), name="media-stats")
        self._loop_monitor.start()

    async def close(self) -> None:
        self.closed = True
        if self.session_left in self.hub.rooms.leave_hooks:
            self.hub.rooms.leave_hooks.remove(self.session_left)
        if self.session_resumed in self.hub.resume_hooks:
            self.hub.resume_hooks.remove(self.session_resumed)
        if self._stats_task is not None:
            self._stats_task.cancel()
            await asyncio.gather(self._stats_task, return_exceptions=True)
        await self._loop_monitor.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for meeting_id in list(self._meetings):
            await self._close_meeting(meeting_id, "shutdown")
        if self.pool is not None:
            await self.pool.close(self.services.config.server.shutdown_timeout_s)
        self._restore_hosts()

    def meeting_media(self, meeting_id: int) -> MeetingMedia | None:
        """The media of a meeting on this node, if any session offered (recordings read it)."""
        entry = self._meetings.get(meeting_id)
        return entry.media if entry is not None else None

    # ------------------------------------------------------------ messages

    async def handle(self, session: Session, message: MediaMessage) -> None:
        meeting_id = session.meeting_id
        if meeting_id is None:
            raise ProtocolError("not_joined", "join a meeting before media", re=message.id)
        if self.closed:
            raise ProtocolError("internal", "the media service is stopping", re=message.id)
        if isinstance(message, MediaOffer):
            await self._offer(session, meeting_id, message)
            return
        entry = self._meetings.get(meeting_id)
        member = entry.media.members.get(session.key) if entry else None
        if isinstance(message, MediaLeave):
            if entry is not None and member is not None:
                await self._remove(entry, session.key, "left")
            session.reply(MediaClosed("left"), message.id)
            return
        if entry is None or member is None:
            raise ProtocolError("conflict", "send media.offer first", re=message.id)
        try:
            if isinstance(message, MediaCandidate):
                await member.peer.add_ice_candidate(message.candidate, message.mid)
            elif isinstance(message, MediaKeyframe):
                sink = member.peer.sinks.get(message.mid)
                if sink is None:
                    raise ProtocolError("invalid_field", f"no receive slot {message.mid!r}",
                                        re=message.id, details={"field": "mid"})
                if sink.source is not None:
                    sink.on_keyframe_request()
            elif isinstance(message, MediaGrid):
                if not member.staff:
                    raise Forbidden("only the meeting's staff see the grid",
                                    details={"action": Action.MEDIA_CONSOLE.value})
                member.grid_page = message.page
                member.grid_size = min(message.page_size or self.settings.max_grid,
                                       self.settings.max_grid)
                entry.media.assign(member)
        except MediaError as exc:
            raise media_error(exc.code, exc.message, message.id) from None

    async def _offer(self, session: Session, meeting_id: int, message: MediaOffer) -> None:
        principal = session.principal
        scope = await self.services.calendar.scope(meeting_id)
        if offer_sends(message.sdp):
            require(principal, Action.MEDIA_PUBLISH, scope)
        roles = {t.mid: t.role for t in message.tracks}
        staff = allowed(principal, Action.MEDIA_CONSOLE, scope)
        if "grid" in roles.values() and not staff:
            raise Forbidden("only the meeting's staff receive the grid",
                            details={"action": Action.MEDIA_CONSOLE.value})
        point = principal.point
        if point is not None and await self.services.floor.is_removed(meeting_id, point.id):
            raise Forbidden(f"point {point.code} was removed from this meeting",
                            code="point_removed")
        entry = await self._meeting(meeting_id)
        if session.meeting_id != meeting_id:
            await self._drop_if_empty(entry)
            raise ProtocolError("not_joined", "the session left the meeting", re=message.id)
        media = entry.media
        member = media.members.get(session.key)
        new = member is None
        if member is None:
            try:
                peer = media.room.create_peer(session.key)
            except MediaError as exc:
                await self._drop_if_empty(entry)
                raise media_error(exc.code, exc.message, message.id) from None
            member = Member(session, peer, point.code if point else None, principal.label,
                            staff, grid_size=self.settings.max_grid)
            media.add(member)
        member.roles.update(roles)
        try:
            answer = await member.peer.accept_offer(message.sdp)
        except MediaError as exc:
            if new or member.peer.broken or member.peer.closed:
                await self._remove(entry, session.key, "failed")
                if not new:
                    session.reply(MediaClosed("failed"))
            raise media_error(exc.code, exc.message, message.id) from None
        except Exception:
            if new:  # an unexpected failure must not leave a half-made peer behind
                await self._remove(entry, session.key, "failed")
            raise
        if media.members.get(session.key) is not member:
            return  # the session left (or the meeting closed) during the negotiation
        session.reply(MediaAnswer(answer), message.id)
        if not member.answered:
            member.answered = True
            main = media.main
            session.reply(MediaMain(main.point_code, main.label, main.reason))
        media.reassign()

    # ------------------------------------------------------------ meetings

    async def _meeting(self, meeting_id: int) -> _Meeting:
        async with self._lock:
            entry = self._meetings.get(meeting_id)
            if entry is not None:
                return entry
            if self.closed:
                raise ProtocolError("internal", "the media service is stopping")
            if self.pool is None:
                self.pool = WorkerPool(self.config, self.settings.workers)
                self.pool.on_loop_report = lambda _worker, r: self._loop_report("media_worker", r)
            await self.pool.start()
            floor = await self.services.floor.state(meeting_id)
            main = MainScreen(floor.main_screen.point_code, floor.main_screen.label,
                              floor.main_screen.reason)
            subscription = await self.services.bus.subscribe(topic(meeting_id))
            holder: list[MeetingMedia] = []
            room = RoomProxy(self.pool, str(meeting_id),
                             on_event=lambda e: holder[0].on_media_event(e))
            media = MeetingMedia(meeting_id, room, main,  # type: ignore[arg-type]  # Room's API
                                 audio_slots=self.settings.audio_slots,
                                 max_grid=self.settings.max_grid, on_closed=self._peer_failed)
            holder.append(media)
            media.muted.update(floor.muted)
            media.share = share_view(self.services.floor.share.current(meeting_id))
            relay = asyncio.create_task(self._relay(media, subscription),
                                        name=f"media-relay {meeting_id}")
            entry = self._meetings[meeting_id] = _Meeting(media, subscription, relay, StatsState())
            return entry

    async def _remove(self, entry: _Meeting, key: str, reason: str) -> None:
        await entry.media.remove(key, reason)
        await self._share_gone(entry.media.meeting_id, key)
        await self._drop_if_empty(entry, reason)

    async def _share_gone(self, meeting_id: int, key: str) -> None:
        """A session's media went: if it was sharing content, the share ends (main screen back)."""
        try:
            await self.services.floor.share.session_gone(meeting_id, key)
        except Exception:
            log.exception("media: ending the share of %s in meeting %d failed", key, meeting_id)

    async def _drop_if_empty(self, entry: _Meeting, reason: str = "empty") -> None:
        if entry.media.empty and self._meetings.get(entry.media.meeting_id) is entry:
            await self._close_meeting(entry.media.meeting_id, reason)

    def _peer_failed(self, media: MeetingMedia, member: Member, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._share_gone(media.meeting_id, member.key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if media.empty:
            self._spawn_close(media.meeting_id)

    def _spawn_close(self, meeting_id: int) -> None:
        async def close_if_empty() -> None:
            entry = self._meetings.get(meeting_id)
            if entry is not None and entry.media.empty:
                await self._close_meeting(meeting_id, "empty")

        task = asyncio.get_running_loop().create_task(close_if_empty(),
                                                      name=f"media-close {meeting_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_meeting(self, meeting_id: int, reason: str) -> None:
        entry = self._meetings.pop(meeting_id, None)
        if entry is None:
            return
        await entry.subscription.close()
        entry.relay.cancel()
        await asyncio.gather(entry.relay, return_exceptions=True)
        await entry.media.close("meeting_closed" if reason == "meeting_closed" else reason)
        forget(entry.media, entry.stats, self.metrics)

    async def session_left(self, session: Session, meeting_id: int, reason: str) -> None:
        """Rooms hook: a session left its meeting (left, switched, timeout, meeting closed)."""
        entry = self._meetings.get(meeting_id)
        if entry is None or session.key not in entry.media.members:
            return
        await self._remove(entry, session.key, reason)
        session.reply(MediaClosed(reason if reason in ("meeting_closed", "removed") else "left"))

    def session_resumed(self, session: Session) -> None:
        """Hub hook: a session is back on a new socket; its peer may have survived the gap,
        so it gets the media state again (``media.main``, ``media.slots``)."""
        entry = self._meetings.get(session.meeting_id or 0)
        member = entry.media.members.get(session.key) if entry else None
        if entry is None or member is None or not member.answered:
            return
        main = entry.media.main
        session.reply(MediaMain(main.point_code, main.label, main.reason))
        member.last_slots = None
        entry.media.assign(member)

    async def _relay(self, media: MeetingMedia, subscription: Subscription) -> None:
        async for envelope in subscription:
            event = envelope.event
            kind = event.get("type")
            try:
                if kind == "main_screen.changed":
                    code = None if event.get("point_code") is None else str(event["point_code"])
                    reason = str(event.get("reason") or "floor")
                    label = event.get("label")
                    if not isinstance(label, str):
                        label = await self._label(code)
                    media.set_main(MainScreen(code, label, reason))
                elif kind == "share.changed":
                    self.services.floor.share.observe(event)
                    media.set_share(share_view(self.services.floor.share.current(media.meeting_id)))
                elif kind == "point.muted" and event.get("point_code") is not None:
                    media.set_muted(str(event["point_code"]), bool(event.get("muted")))
                elif kind == "point.removed" and event.get("point_code") is not None:
                    await self._point_removed(media, str(event["point_code"]))
            except Exception:
                log.exception("media: handling %s in meeting %d failed", kind, media.meeting_id)

    async def _point_removed(self, media: MeetingMedia, code: str) -> None:
        entry = self._meetings.get(media.meeting_id)
        for member in [m for m in media.members.values() if m.point_code == code]:
            if entry is not None:
                await self._remove(entry, member.key, "removed")
            member.session.reply(MediaClosed("removed"))

    async def _label(self, code: str | None) -> str:
        if code is None:
            return ""
        try:
            return (await self.services.registry.by_code(code)).name
        except NotFound:
            return code

    # ------------------------------------------------------------ the chair's command

    async def set_main_screen(self, meeting_id: int, principal: Principal, scope: MeetingScope,
                              point_code: str) -> MainScreen:
        """Put ``point_code`` (an invited point) on every point's main screen. The state
        belongs to the floor (meetings/floor.py); its ``main_screen.changed`` event switches
        the media of every session, on every node."""
        state = await self.services.floor.set_main_screen(meeting_id, principal, point_code)
        main = state.main_screen
        return MainScreen(main.point_code, main.label, main.reason)

    # ------------------------------------------------------------ stats

    def _loop_report(self, process: str, report: LoopReport) -> None:
        self.metrics.observe_loop(process, report.lag_max_s, report.stalls)
        self.load.add(report)

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stats_interval_s)
            load = self.load.take()
            if load["stalls"] and self._meetings:  # start-up work (no call yet) is no alarm
                log.warning("media: this node's event loops stalled %d times (up to %.0f ms) "
                            "in %.0f s: the node is overloaded", load["stalls"],
                            load["lag_max_ms"], load["seconds"])
            for meeting_id, entry in list(self._meetings.items()):
                try:
                    await self._stats(meeting_id, entry, load)
                except Exception:
                    log.exception("media: stats of meeting %d failed", meeting_id)

    async def _stats(self, meeting_id: int, entry: _Meeting, load: dict[str, Any]) -> None:
        room = self.hub.rooms.active.get(meeting_id)
        present = [s for s in (room.sessions if room else ()) if s.meeting_id == meeting_id]
        scope = await self.services.calendar.scope(meeting_id)
        invited = await invited_points(self.services.registry, scope, entry.stats)
        message = MediaStats(collect(entry.media, entry.stats, self.metrics, present, invited),
                             server=load)
        for session in present:
            if session.connection is not None and allowed(session.principal,
                                                          Action.MEDIA_CONSOLE, scope):
                session.reply(message)


def share_view(share: Share | None) -> ShareView | None:
    """What the slot policy needs of the meeting's share (meetings/share.py)."""
    if share is None:
        return None
    return ShareView(share.session, share.point_code, share.user_id, share.label, share.layout)


MEDIA: web.AppKey[MediaService] = web.AppKey("media_service")


def media_of(app: web.Application, re: MessageId | None) -> MediaService:
    service = app.get(MEDIA)
    if service is None:
        raise ProtocolError("internal", "media is not available on this server", re=re)
    return service


async def _media_ctx(app: web.Application) -> AsyncIterator[None]:
    service = MediaService(app[SERVICES], app[HUB], app[METRICS])
    await service.start()
    app[MEDIA] = service
    try:
        yield
    finally:
        try:
            await service.close()
        except Exception:
            log.exception("media: closing the media service failed")


def setup(app: web.Application) -> None:
    """After ``ws.setup``: the hub must exist when the media service starts."""
    app.cleanup_ctx.append(_media_ctx)
