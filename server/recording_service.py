"""Meeting recordings on this node (docs/recording.md): one recorder process
(``media/recorder.py``) per running recording, fed over a packet link with only the sources
the recording needs, chosen by :meth:`server.media_room.MeetingMedia.recording_sources`.

Each running recording has one supervising task (owned here, cancelled and awaited on stop
and at shutdown) which every ``POLL_S`` re-reads the meeting's sources (so a main-screen
switch or a new speaker reaches the file within a poll), forwards new ones, stops forwarding
the others, tells the recorder what to select, and notices a dead recorder (→ ``failed``), the
meeting closing (→ stopped and finalised) and ``recording.max_hours``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from media import MediaError, Source
from media.recorder import RecorderProcess
from media.recorder_engine import OutputSpec
from meetings.bus import Subscription
from meetings.calendar import topic
from meetings.clock import isoformat, utcnow
from meetings.errors import Conflict
from meetings.models import Principal
from meetings.recordings import COMPLETED, FAILED, Recording, Recordings

from .config import RecordingSettings
from .keys import SERVICES
from .media_service import MEDIA, MediaService
from .services import Services

log = logging.getLogger(__name__)

POLL_S = 0.25
STOP_TIMEOUT_S = 30.0


@dataclass(eq=False)
class _Active:
    recording: Recording
    process: RecorderProcess
    forwarded: dict[str, tuple[Source, int]] = field(default_factory=dict)
    selected: tuple[str | None, tuple[str, ...]] | None = None
    task: asyncio.Task[None] | None = None
    stopping: asyncio.Task[Recording] | None = None


class RecordingService:
    def __init__(self, services: Services, media: MediaService) -> None:
        self.services = services
        self.media = media
        self.settings: RecordingSettings = services.config.recording
        self.domain = Recordings(services.db, services.bus)
        self.dir = Path(self.settings.dir).expanduser() if self.settings.dir \
            else services.config.data_path / "recordings"
        self.node = f"{socket.gethostname()}:{self.dir.resolve()}"
        "Who writes the files: a restart interrupts only its own leftovers."
        self._active: dict[int, _Active] = {}  # by meeting id
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        self.closed = False

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for rec in await self.domain.interrupt_all(self.node):
            log.warning("recording %d of meeting %d was left running: interrupted", rec.id, rec.meeting_id)

    async def close(self) -> None:
        """Shutdown: every running recording is stopped and its file finalised."""
        self.closed = True
        for meeting_id in list(self._active):
            try:
                await self.stop(meeting_id, None, "shutdown")
            except Exception:
                log.exception("recording: stopping meeting %d at shutdown failed", meeting_id)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def path_of(self, rec: Recording) -> Path:
        return self.dir / rec.file_name

    def badge(self, meeting_id: int) -> dict[str, object]:
        """The badge's first state (then kept live by recording.* events)."""
        rec = self.running(meeting_id)
        return {"running": rec is not None, "recording_id": rec.id if rec else None}

    def running(self, meeting_id: int) -> Recording | None:
        active = self._active.get(meeting_id)
        return active.recording if active is not None else None

    # ------------------------------------------------------------ start / stop

    async def begin(self, meeting_id: int, actor: Principal) -> Recording:
        if not self.settings.enabled:
            raise Conflict("recording is disabled on this server", code="recording_disabled")
        if self.closed:
            raise Conflict("the server is stopping", code="recording_disabled")
        async with self._lock:
            meeting = await self.services.calendar.get(meeting_id)
            if meeting.state.value == "closed":
                raise Conflict("the meeting is closed", code="meeting_closed")
            s = self.settings
            stamp = isoformat(meeting.opened_at or meeting.starts_at) or ""
            # the row first (it refuses a second recording), then the process
            rec = await self.domain.begin(meeting_id, actor, width=s.width, height=s.height,
                                          fps=s.fps, node=self.node, announce=False)
            final = self.path_of(rec)
            spec = OutputSpec(final.with_name(final.name + ".part"), s.width, s.height, s.fps,
                              s.video_bitrate, metadata={
                                  "title": meeting.title, "meeting_id": str(meeting_id),
                                  "creation_time": isoformat(rec.started_at) or "",
                                  "meeting_start": stamp, "encoder_app": "diemcau"})
            process = RecorderProcess(spec, final)
            try:
                await process.open()
            except BaseException as exc:  # failed or cancelled: never leave a running row
                await process.close(1.0)
                await self.domain.finish(rec.id, None, status=FAILED, reason="spawn_failed")
                if not isinstance(exc, Exception):
                    raise
                raise Conflict(f"the recorder could not start: {exc}",
                               code="recording_failed") from None
            active = self._active[meeting_id] = _Active(rec, process)
            active.task = asyncio.create_task(self._supervise(active), name=f"recording {rec.id}")
            await self.domain.announce(rec)  # the badge shows once the recorder really runs
            return rec

    async def stop(self, meeting_id: int, actor: Principal | None, reason: str,
                   recording_id: int | None = None) -> Recording:
        """Stop the meeting's running recording (``recording_id`` must match when given)."""
        async with self._lock:  # a start in progress finishes first
            active = self._active.get(meeting_id)
        if active is None or (recording_id is not None and active.recording.id != recording_id):
            if recording_id is not None:
                rec = await self.domain.get(recording_id)  # NotFound for an unknown id
                if rec.meeting_id != meeting_id:
                    await self.domain.get(-1)
            raise Conflict("no recording of this meeting is running", code="recording_not_running")
        if active.stopping is None:
            active.stopping = asyncio.create_task(self._finish(active, actor, reason),
                                                  name=f"recording-stop {active.recording.id}")
        return await asyncio.shield(active.stopping)

    async def _finish(self, active: _Active, actor: Principal | None, reason: str,
                      failed: bool = False) -> Recording:
        rec = active.recording
        if active.task is not None and active.task is not asyncio.current_task():
            active.task.cancel()
            await asyncio.gather(active.task, return_exceptions=True)
        result = None
        if not failed:
            try:
                result = await active.process.call("stop", timeout=STOP_TIMEOUT_S)
            except MediaError as exc:
                log.error("recording %d: the recorder failed to finish: %s", rec.id, exc)
        await active.process.close()
        # completed only when the recorder exited cleanly and the final (renamed) file exists;
        # a recorder that finalised on a signal without answering still counts (wall-clock
        # duration), a ``.part`` file never does
        ok = active.process.process is not None and active.process.process.returncode == 0 \
            and self.path_of(rec).exists()
        self._active.pop(rec.meeting_id, None)
        if ok:
            duration = float(result["duration_s"]) if result is not None else \
                (utcnow() - rec.started_at).total_seconds()
            return await self.domain.finish(rec.id, actor, status=COMPLETED, reason=reason,
                                            duration_s=duration,
                                            size_bytes=self.path_of(rec).stat().st_size)
        return await self.domain.finish(rec.id, actor, status=FAILED,
                                        reason="recorder_died" if failed else reason)

    # ------------------------------------------------------------ supervision

    async def _supervise(self, active: _Active) -> None:
        rec = active.recording
        subscription = await self.services.bus.subscribe(topic(rec.meeting_id))
        watcher = asyncio.create_task(self._watch_meeting(rec.meeting_id, subscription))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_hours * 3600
        ending: str | None = None
        try:
            while ending is None:
                if not active.process.alive:
                    ending = "recorder_died"
                elif loop.time() >= deadline:
                    ending = "max_duration"
                else:
                    try:
                        await self._sync(active)
                    except MediaError as exc:
                        log.warning("recording %d: %s", rec.id, exc)
                    except Exception:  # keep supervising: one bad round must not end it
                        log.exception("recording %d: choosing sources failed", rec.id)
                    await asyncio.sleep(POLL_S)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await subscription.close()
        # after the cleanup: stopping cancels and awaits this task
        self._spawn(self._died(active) if ending == "recorder_died"
                    else self.stop(rec.meeting_id, None, "max_duration"))

    async def _watch_meeting(self, meeting_id: int, subscription: Subscription) -> None:
        async for envelope in subscription:
            event = envelope.event
            if event.get("type") == "meeting.state" and event.get("state") == "closed":
                self._spawn(self.stop(meeting_id, None, "meeting_closed"))
                return

    async def _died(self, active: _Active) -> None:
        if active.stopping is None:
            log.error("recording %d: the recorder process died", active.recording.id)
            active.stopping = asyncio.create_task(self._finish(active, None, "recorder_died", failed=True))
        await asyncio.shield(active.stopping)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync(self, active: _Active) -> None:
        """Forward exactly the sources the recording needs now, and tell the recorder."""
        media = self.media.meeting_media(active.recording.meeting_id)
        sources = media.room.sources if media is not None else {}
        video, audio = media.recording_sources() if media is not None else (None, [])
        wanted = {sid for sid in (video, *audio) if sid is not None and sid in sources}
        selected = (video if video in wanted else None, tuple(a for a in audio if a in wanted))
        if selected != active.selected:
            # select first: a new source's first keyframe (asked for when it is announced)
            # must find the recorder already waiting for it
            await active.process.call("select", video=selected[0], audio=list(selected[1]))
            active.selected = selected
        sender = active.process.sender
        assert sender is not None
        for sid, (source, index) in list(active.forwarded.items()):
            if sid not in wanted or sources.get(sid) is not source or source.closed:
                sender.stop(index)
                del active.forwarded[sid]
        for sid in wanted:
            candidate = sources.get(sid)
            if sid not in active.forwarded and candidate is not None and not candidate.closed:
                active.forwarded[sid] = (candidate, sender.forward(candidate))


RECORDING: web.AppKey[RecordingService] = web.AppKey("recording_service")


async def _recording_ctx(app: web.Application) -> AsyncIterator[None]:
    from .pages import ENV_KEYS

    service = RecordingService(app[SERVICES], app[MEDIA])
    await service.start()
    app[RECORDING] = service
    for key in ENV_KEYS.values():  # the badge partial (_recording_badge.html) asks this node
        env = app.get(key)
        if env is not None:
            env.globals["recording_badge"] = service.badge
    try:
        yield
    finally:
        try:
            await service.close()
        except Exception:
            log.exception("recording: closing the recording service failed")


def setup(app: web.Application) -> None:
    """After the media service's setup: its context must start first (and close last)."""
    app.cleanup_ctx.append(_recording_ctx)
