"""What a bridge agent publishes: a synthetic test picture (with the point's name on it) and
tone, a media file, a V4L2 camera or an ALSA microphone (FFmpeg through aiortc's
``MediaPlayer``), and the smaller renditions of one camera (``camera-low``, ``camera-thumb``).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError

from server.bridge.options import AgentError, ExitCode

log = logging.getLogger("diemcau.bridge")

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
FONT_DIR = Path(__file__).resolve().parent.parent.parent / "web" / "fonts"

#: (width, height) of ``camera`` when ``camera-hd`` carries the full-size picture (``--hd``).
CAMERA_SIZE = (640, 360)
#: (role, width, height, fps) of the renditions besides ``camera``.
RENDITIONS: tuple[tuple[str, int, int, int], ...] = (("camera-low", 320, 180, 30),
                                                     ("camera-thumb", 160, 90, 10))


class PacedTrack(MediaStreamTrack):
    """Base for synthetic tracks: ``recv()`` waits until the next frame is due."""

    def __init__(self, period_s: float) -> None:
        super().__init__()
        self._period = period_s
        self._start: float | None = None
        self.count = 0

    async def _pace(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self.count * self._period
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 1.0:  # a long stall (suspended machine): do not burst to catch up
            self._start = now - self.count * self._period
        index = self.count
        self.count += 1
        return index


def _font(size: int) -> Any:
    from PIL import ImageFont

    for name in ("NotoSans-Bold.ttf", "NotoSans-Regular.ttf"):
        path = FONT_DIR / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default()


def pattern_frames(width: int, height: int, label: str, frames: int) -> list[av.VideoFrame]:
    """A loop of ``frames`` pictures: colour bars, a bar sweeping across, a moving square, and
    ``label`` (the point's code and name) written in the middle."""
    from PIL import Image, ImageDraw

    bars = np.zeros((height, width, 3), np.uint8)
    colours = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192),
               (192, 0, 0), (0, 0, 192), (30, 30, 30)]
    for i, colour in enumerate(colours):
        bars[:, i * width // 8:(i + 1) * width // 8] = colour
    base = Image.fromarray(bars)
    if label:
        draw = ImageDraw.Draw(base)
        font = _font(max(10, height // 12))
        box = draw.textbbox((0, 0), label, font=font)
        tw, th = box[2] - box[0], box[3] - box[1]
        x, y = max(0, (width - tw) // 2), max(0, (height - th) // 2)
        draw.rectangle((x - 8, y - 6, x + tw + 8, y + th + 10), fill=(0, 0, 0))
        draw.text((x - box[0], y - box[1]), label, font=font, fill=(255, 255, 255))
    still = np.asarray(base)
    out: list[av.VideoFrame] = []
    square = max(4, height // 6)
    for i in range(frames):
        img = still.copy()
        x = (i * width) // frames
        img[:, x:x + max(2, width // 40)] = (255, 255, 255)
        sy = (i * (height - square)) // frames
        sx = width - square - (i * (width - square)) // frames
        img[sy:sy + square, sx:sx + square] = (255, 64, 0)
        out.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    return out


class PatternCamera(PacedTrack):
    """The synthetic camera (``--video testsrc``): :func:`pattern_frames` at ``fps``."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30, label: str = "") -> None:
        super().__init__(1 / fps)
        self._step = VIDEO_CLOCK // fps
        self._frames = pattern_frames(width, height, label, frames=max(2, min(fps, 30)))

    async def recv(self) -> av.VideoFrame:
        index = await self._pace()
        frame = self._frames[index % len(self._frames)]
        # aiortc marks a frame I to force a keyframe; these frames are reused, so clear it.
        frame.pict_type = av.video.frame.PictureType.NONE
        frame.pts = index * self._step
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class ToneMicrophone(PacedTrack):
    """A quiet 440 Hz tone in 20 ms Opus-sized frames (``--audio tone``)."""

    kind = "audio"

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__(0.02)
        t = np.arange(AUDIO_RATE // 50) / AUDIO_RATE
        self._data = (np.sin(2 * np.pi * hz * t) * 3000).astype(np.int16).reshape(1, -1)

    async def recv(self) -> av.AudioFrame:
        index = await self._pace()
        frame = av.AudioFrame.from_ndarray(self._data, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * (AUDIO_RATE // 50)
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


class ScaledTrack(MediaStreamTrack):
    """A smaller, optionally slower copy of a video track (a rendition of a real camera)."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, width: int, height: int, fps: int) -> None:
        super().__init__()
        self._source = source
        self._size = (width, height)
        self._min_gap = 1 / fps
        self._last = -1.0

    async def recv(self) -> av.VideoFrame:
        while True:
            frame = await self._source.recv()
            if not isinstance(frame, av.VideoFrame):
                continue
            at = float(frame.time) if frame.time is not None else time.monotonic()
            if at - self._last >= self._min_gap * 0.9 or at < self._last:
                self._last = at
                out = frame.reformat(width=self._size[0], height=self._size[1], format="yuv420p")
                out.pts, out.time_base = frame.pts, frame.time_base
                return out

    def stop(self) -> None:
        super().stop()
        self._source.stop()


class GatedTrack(MediaStreamTrack):
    """A track that yields frames only while open: ``camera-hd`` is sent only while this point
    is on the main screen (as the browser does with ``replaceTrack``), so a commune link does
    not carry HD that the server would drop, nor the hall PC encode it. While closed,
    ``recv()`` waits (aiortc's sender sends nothing); the server asks for a keyframe when a
    subscriber switches to HD."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, *, open_: bool = False) -> None:
        super().__init__()
        self._source = source
        self._open = asyncio.Event()
        if open_:
            self._open.set()
        self.frames = 0
        "Frames passed on since the start (none while closed)."

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def set_open(self, on: bool) -> None:
        if on:
            self._open.set()
        else:
            self._open.clear()

    async def recv(self) -> Any:
        while True:
            await self._open.wait()
            frame = await self._source.recv()
            if self._open.is_set():  # closed while the frame was on its way: drop it
                self.frames += 1
                return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()


@dataclass
class Sources:
    """The tracks to publish, by role (``camera-hd``, ``camera``, ``camera-low``, ``camera-thumb``, ``mic``),
    and what must be closed with them."""

    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)
    players: list[MediaPlayer] = field(default_factory=list)

    def close(self) -> None:
        for track in self.tracks.values():
            track.stop()
        for player in self.players:
            for own in (player.audio, player.video):
                if own is not None:
                    own.stop()
        self.tracks.clear()
        self.players.clear()


def _player(spec: str, *, video: bool, size: tuple[int, int], fps: int) -> MediaPlayer:
    try:
        if video and spec.startswith("/dev/video"):
            return MediaPlayer(spec, format="v4l2",
                               options={"video_size": f"{size[0]}x{size[1]}", "framerate": str(fps)})
        if spec.startswith("alsa:"):
            return MediaPlayer(spec.removeprefix("alsa:"), format="alsa")
        if not Path(spec).is_file():
            raise AgentError(ExitCode.USAGE, f"no such media file: {spec}")
        return MediaPlayer(spec, loop=True)
    except AgentError:
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg says why (av.error.*, OSError)
        raise AgentError(ExitCode.FAILED, f"cannot open {spec}: {exc}") from None


def open_sources(video: str, audio: str, *, size: tuple[int, int] = (640, 360), fps: int = 30,
                 renditions: bool = False, label: str = "", hd: bool = False) -> Sources:
    """Open ``--video`` / ``--audio``. Raises :class:`AgentError` when a device or file cannot
    be opened or has no track of the wanted kind. ``hd``: the picture at ``size`` is published
    as ``camera-hd`` (a :class:`GatedTrack`, closed until the agent is on the main screen),
    ``camera`` is its 640x360 copy, plus ``camera-low`` and ``camera-thumb``."""
    sources = Sources()
    shared: dict[str, MediaPlayer] = {}
    renditions = renditions or hd
    try:
        if video == "testsrc" and hd:
            sources.tracks["camera-hd"] = GatedTrack(PatternCamera(size[0], size[1], fps, label))
            sources.tracks["camera"] = PatternCamera(*CAMERA_SIZE, fps, label)
            for role, w, h, r_fps in RENDITIONS:
                sources.tracks[role] = PatternCamera(w, h, min(fps, r_fps), label)
        elif video == "testsrc":
            sources.tracks["camera"] = PatternCamera(size[0], size[1], fps, label)
            if renditions:
                for role, w, h, r_fps in RENDITIONS:
                    sources.tracks[role] = PatternCamera(w, h, min(fps, r_fps), label)
        elif video != "none":
            player = shared[video] = _player(video, video=True, size=size, fps=fps)
            sources.players.append(player)
            if player.video is None:
                raise AgentError(ExitCode.USAGE, f"{video} has no video track")
            if renditions:
                relay = MediaRelay()
                top = relay.subscribe(player.video, buffered=False)
                sources.tracks["camera-hd" if hd else "camera"] = GatedTrack(top) if hd else top
                if hd:
                    sources.tracks["camera"] = ScaledTrack(relay.subscribe(player.video, buffered=False),
                                                           *CAMERA_SIZE, fps)
                for role, w, h, r_fps in RENDITIONS:
                    sources.tracks[role] = ScaledTrack(relay.subscribe(player.video, buffered=False),
                                                       w, h, r_fps)
            else:
                sources.tracks["camera"] = player.video
        if audio == "tone":
            sources.tracks["mic"] = ToneMicrophone()
        elif audio != "none":
            player = shared.get(audio) or _player(audio, video=False, size=size, fps=fps)
            if player not in sources.players:
                sources.players.append(player)
            if player.audio is None:
                raise AgentError(ExitCode.USAGE, f"{audio} has no audio track")
            sources.tracks["mic"] = player.audio
    except BaseException:
        sources.close()
        raise
    return sources
