"""The bridge agent: one bridge point (điểm cầu) joined to one meeting, publishing and/or
receiving media, until it is told to stop.

Flow: ``hello {token}`` → ``join {meeting_id}`` (an invitation token names its meeting in
``welcome.principal.meeting_id``; a device token needs ``--meeting``) → open the sources →
``media.offer`` → apply ``media.answer``. Then it follows the server: ``media.slots`` /
``media.main`` are recorded, ``media.closed`` or a failed peer → offer again, a lost socket →
resume (the peer keeps running), a session the server forgot → join and offer again, the
meeting closed → stop. It prints one JSON object per line on stdout: events and, every
``stats_interval_s``, what each slot received (fps, kbps, loss, keyframes) — logs go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any, TextIO

from media.aiortc_hooks import use_host_addresses
from media.runtime import settle_gc
from server.bridge.counting import RtpCounter, rates
from server.bridge.offer import MediaLink, SendTap
from server.bridge.options import AgentError, AgentOptions, ExitCode
from server.bridge.signalling import Refused, SessionEvent, SignallingSession
from server.bridge.sources import GatedTrack, PacedTrack, Sources, open_sources

log = logging.getLogger("diemcau.bridge")

CONNECT_TIMEOUT_S = 15.0
RETRY_S = (1.0, 2.0, 5.0, 10.0)
#: media.offer refusals that another try cannot fix (the server has no media, or we are wrong).
FINAL_MEDIA_ERRORS = frozenset({"unknown_type", "invalid_sdp", "unsupported_codec", "too_large",
                                "forbidden", "invalid_field", "missing_field"})


class BridgeAgent:
    """Runs one bridge point. ``await run()`` returns the process exit code."""

    def __init__(self, options: AgentOptions, *, out: TextIO | None = None,
                 patch_ice: bool = True) -> None:
        self.options = options
        self.out = out if out is not None else sys.stdout
        self.patch_ice = patch_ice
        self.counter = RtpCounter()
        self.send_tap: SendTap | None = None
        self.session: SignallingSession | None = None
        self.link: MediaLink | None = None
        self.sources = Sources()
        self.meeting_id: int | None = None
        self.slots: dict[str, dict[str, Any]] = {}
        self.main: dict[str, Any] = {}
        self.negotiations = 0
        self.media_error: str | None = None
        self.joined = asyncio.Event()
        self._stop = asyncio.Event()
        self._exit = ExitCode.OK
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._media_task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    # --- control -----------------------------------------------------------------------------

    def stop(self, exit_code: ExitCode = ExitCode.OK) -> None:
        """Ask the agent to stop (signal handlers call this)."""
        if not self._stop.is_set():
            self._exit = exit_code
            self._stop.set()

    def emit(self, type_: str, **fields: Any) -> None:
        """One JSON line on stdout."""
        line = json.dumps({"type": type_, "t": round(time.time(), 3), **fields}, ensure_ascii=False)
        with contextlib.suppress(ValueError, OSError):
            self.out.write(line + "\n")
            self.out.flush()

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> ExitCode:
        options = self.options
        restore_ice = use_host_addresses(options.host_addresses()) if self.patch_ice else None
        tasks: list[asyncio.Task[Any]] = []
        try:
            self.session = SignallingSession(options.websocket_url, options.token, self._events.put_nowait,
                                             ca_file=options.ca_file)
            welcome = await self.session.open()
            principal = self.session.principal
            self.emit("welcome", session=welcome.get("session"), principal=principal)
            self.meeting_id = options.meeting_id or principal.get("meeting_id")
            if self.meeting_id is None:
                raise AgentError(ExitCode.JOIN, "this token names no meeting: give --meeting ID")
            tasks.append(asyncio.create_task(self.session.run(), name="bridge-signalling"))
            await self._join()
            settle_gc()  # what start-up allocated is never collected again (media/runtime.py)
            if options.publishes:
                point = principal.get("point") or {}
                label = options.label or " ".join(x for x in (point.get("code"), point.get("name")) if x) \
                    or str(principal.get("label", ""))
                self.sources = await asyncio.to_thread(
                    open_sources, options.video, options.audio, size=options.video_size,
                    fps=options.fps, renditions=options.renditions, label=label, hd=options.hd)
            self._start_media()
            tasks.append(asyncio.create_task(self._consume(), name="bridge-events"))
            if options.stats_interval_s > 0:
                tasks.append(asyncio.create_task(self._report(), name="bridge-stats"))
            timeout = options.seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout)
            return self._exit
        except AgentError as exc:
            log.error("%s", exc.message)
            self.emit("error", code=exc.code or exc.exit_code.name.lower(), message=exc.message)
            return exc.exit_code
        finally:
            await self._shutdown(tasks)
            if restore_ice is not None:
                restore_ice()

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        self.emit("summary", seconds=round(time.monotonic() - self._started, 2),
                  video=self.counter.totals("video"), audio=self.counter.totals("audio"),
                  negotiations=self.negotiations, resumes=self.session.resumes if self.session else 0)
        await self._stop_media()
        if self.session is not None:
            await self.session.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sources.close()

    async def _join(self) -> None:
        assert self.session is not None and self.meeting_id is not None
        try:
            joined = await self.session.request("join", meeting_id=self.meeting_id)
        except Refused as exc:
            raise AgentError(ExitCode.JOIN, f"cannot join meeting {self.meeting_id}: {exc.message}",
                             exc.code) from None
        except (ConnectionError, TimeoutError) as exc:
            raise AgentError(ExitCode.UNREACHABLE, f"join got no answer: {exc}") from None
        self.joined.set()
        meeting = joined.get("meeting") or {}
        self.emit("joined", meeting=meeting, presence=len(joined.get("presence") or []))

    # --- server events -----------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._handle(event)
            except AgentError as exc:
                self.emit("error", code=exc.code, message=exc.message)
                self.stop(exc.exit_code)
            except Exception:
                log.exception("handling %s failed", event.message.get("type"))

    async def _handle(self, event: SessionEvent) -> None:
        if event.kind == "fatal":
            assert event.error is not None
            raise event.error
        if event.kind == "reset":  # the server forgot us: join and offer again
            self.emit("reset")
            await self._join()
            await self._stop_media()
            self._start_media()
            return
        if event.kind == "resumed":
            self.emit("resumed", replayed=event.message.get("replayed", 0))
            return
        msg = event.message
        kind = msg.get("type")
        if kind == "media.slots":
            self.slots = {str(s.get("mid")): s for s in msg.get("slots") or [] if isinstance(s, dict)}
            self.emit("slots", slots=list(self.slots.values()))
        elif kind == "media.main":
            self.main = {k: msg.get(k) for k in ("point_code", "label", "reason")}
            self.emit("main", **self.main)
            self._gate_hd()
        elif kind == "media.closed":
            self.emit("media_closed", reason=msg.get("reason"))
            await self._stop_media()
            self._start_media(delay=1.0)
        elif kind == "left" and msg.get("reason") == "meeting_closed":
            self.emit("meeting_closed", meeting_id=msg.get("meeting_id"))
            self.stop(ExitCode.OK)
        elif kind == "error" and "re" not in msg:
            log.warning("server error: %s %s", msg.get("code"), msg.get("message"))

    # --- media -------------------------------------------------------------------------------

    @property
    def on_main_screen(self) -> bool:
        """This point's camera is what the main screen shows (a share there is not)."""
        point = (self.session.principal.get("point") or {}) if self.session is not None else {}
        code = point.get("code") if isinstance(point, dict) else None
        return bool(code) and self.main.get("point_code") == code and self.main.get("reason") != "share"

    def _gate_hd(self) -> None:
        """``camera-hd`` flows only while this point is on the main screen."""
        track = self.sources.tracks.get("camera-hd")
        on = self.on_main_screen
        if isinstance(track, GatedTrack) and track.is_open != on:
            track.set_open(on)
            self.emit("hd", sending=on)

    def _start_media(self, delay: float = 0.0) -> None:
        if self.options.main_slots + self.options.audio_slots == 0 and not self.sources.tracks:
            return
        self._media_task = asyncio.create_task(self._media(delay), name="bridge-media")

    async def _stop_media(self) -> None:
        task, self._media_task = self._media_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        link, self.link = self.link, None
        if link is not None:
            await link.close()
        self.slots = {}

    async def _media(self, delay: float) -> None:
        """Offer until a peer connection is up; watch it; offer again when it fails."""
        attempt = 0
        await asyncio.sleep(delay)
        while True:
            try:
                ok = await self._negotiate()
            except Exception as exc:  # a bad answer, aiortc refusing it: log, try again
                log.exception("negotiation failed")
                self.emit("media_failed", state=f"error: {exc}")
                ok = False
            if ok is None:
                return
            if ok:
                attempt = 0
                assert self.link is not None
                await self.link.failed.wait()
                self.emit("media_failed", state=self.link.state)
            link, self.link = self.link, None
            if link is not None:
                await link.close()
            await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            attempt += 1

    async def _negotiate(self) -> bool | None:
        """One offer/answer. True: connected; False: try again; None: give up for good."""
        assert self.session is not None
        options = self.options
        tracks = {} if options.receive_only else self.sources.tracks
        link = self.link = MediaLink(tracks, main_slots=options.main_slots,
                                     audio_slots=options.audio_slots,
                                     count_only=options.receive_only, counter=self.counter)
        link.send_tap = self.send_tap
        sdp, offered = await link.make_offer()
        self.negotiations += 1
        try:
            answer = await self.session.request("media.offer", sdp=sdp,
                                                tracks=[t.as_json() for t in offered])
        except Refused as exc:
            self.media_error = exc.code
            self.emit("media_refused", code=exc.code, message=exc.message)
            return None if exc.code in FINAL_MEDIA_ERRORS else False
        except (ConnectionError, TimeoutError) as exc:
            log.info("media.offer got no answer: %s", exc)
            return False
        await link.apply_answer(str(answer.get("sdp", "")))
        if not await link.wait_connected(CONNECT_TIMEOUT_S):
            self.emit("media_failed", state=link.state)
            return False
        self.media_error = None
        self.emit("media_connected", tracks=[t.as_json() for t in offered])
        return True

    # --- statistics --------------------------------------------------------------------------

    def sent_frames(self) -> dict[str, int]:
        return {role: t.count for role, t in self.sources.tracks.items() if isinstance(t, PacedTrack)}

    async def _report(self) -> None:
        interval = self.options.stats_interval_s
        before = {mid: dict(v) for mid, v in self.counter.by_mid().items()}
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            current = self.counter.by_mid()
            slots: dict[str, Any] = {}
            for mid, counts in current.items():
                slot = self.slots.get(mid, {})
                prev = before.get(mid) or dict.fromkeys(counts, 0)
                slots[mid] = {"role": slot.get("role"), "kind": counts["kind"],
                              "point_code": slot.get("point_code"),
                              "rendition": slot.get("rendition"),
                              **rates(prev, counts, now - last)}
            self.emit("stats", seconds=round(now - last, 2),
                      state=self.link.state if self.link else "none", slots=slots,
                      sent_frames=self.sent_frames())
            before, last = {mid: dict(v) for mid, v in current.items()}, now
