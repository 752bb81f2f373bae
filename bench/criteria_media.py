"""Cheap media for ``bench/criteria.py``: clips encoded ONCE with PyAV (libvpx, libopus) at
start, then replayed as ``av.Packet`` objects through aiortc's ``pack()`` path (aiortc 1.16
sends a packet returned by a track's ``recv()`` without encoding it). A 1280x720@30 VP8 encode
costs ~10–40 ms a frame on these cores: encoding live would make the harness, not the server,
the thing measured.

- :func:`vp8_clip`: ``frames`` pictures (the bridge agent's test pattern with the point's label,
  plus per-frame noise so libvpx reaches its bitrate like a real camera), keyframe first, the
  rest delta frames. The replay loops: every loop starts at the keyframe (a keyframe every
  ``frames / fps`` seconds), and a keyframe request from the server (PLI/FIR, which aiortc
  turns into the sender's private "force keyframe" flag) jumps to the keyframe at once.
- :func:`opus_clip`: one second of a quiet tone in 20 ms Opus packets (stereo, 48 kHz, like
  aiortc's own encoder).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from server.bridge.sources import PacedTrack, pattern_frames

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
OPUS_SAMPLES = 960  # 20 ms
FORCE_KEYFRAME = "_RTCRtpSender__force_keyframe"  # aiortc 1.16 private flag (PLI/FIR received)
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)  # made once: a Fraction costs µs per packet
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)


@dataclass(frozen=True)
class Rendition:
    """One published video track of a bench participant."""

    role: str
    "Role in ``media.offer`` tracks (``camera``, ``camera-low``, ``camera-thumb``, …)."
    width: int
    height: int
    fps: int
    kbps: int
    "libvpx target bitrate of the pre-encoded clip."
    clip_frames: int
    "Frames in the looped clip (a keyframe starts each loop)."


def vp8_clip(rendition: Rendition, label: str, *, seed: int = 1) -> list[bytes]:
    """Encode the looped clip; element 0 is a keyframe, the others delta frames."""
    pictures = pattern_frames(rendition.width, rendition.height, label,
                              frames=max(2, min(rendition.fps, 30)))
    ctx: Any = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = rendition.width, rendition.height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, rendition.fps)
    ctx.framerate = rendition.fps
    bitrate = rendition.kbps * 1000
    ctx.bit_rate = bitrate
    ctx.gop_size = 100_000  # keyframes only where we ask for one
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                   "minrate": str(bitrate), "maxrate": str(bitrate), "bufsize": str(bitrate)}
    rng = np.random.default_rng(seed)
    packets: list[bytes] = []
    for index in range(rendition.clip_frames):
        planes = pictures[index % len(pictures)].to_ndarray().astype(np.int16)
        planes += rng.integers(-10, 11, size=planes.shape, dtype=np.int16)
        frame = av.VideoFrame.from_ndarray(np.clip(planes, 0, 255).astype(np.uint8), format="yuv420p")
        frame.pts = index
        frame.time_base = fractions.Fraction(1, rendition.fps)
        frame.pict_type = av.video.frame.PictureType.I if index == 0 else av.video.frame.PictureType.NONE
        packets.extend(bytes(p) for p in ctx.encode(frame))
    packets.extend(bytes(p) for p in ctx.encode(None))
    if len(packets) != rendition.clip_frames:
        raise RuntimeError(f"libvpx gave {len(packets)} packets for {rendition.clip_frames} frames")
    return packets


def opus_clip(seconds: float = 1.0, hz: float = 440.0) -> list[bytes]:
    """20 ms Opus packets of a quiet tone (stereo s16 at 48 kHz, as aiortc encodes)."""
    ctx: Any = av.CodecContext.create("libopus", "w")
    ctx.bit_rate = 32000
    ctx.format = "s16"
    ctx.layout = "stereo"
    ctx.sample_rate = AUDIO_RATE
    ctx.time_base = fractions.Fraction(1, AUDIO_RATE)
    ctx.options = {"application": "voip"}
    count = max(1, int(seconds * 50))
    t = np.arange(count * OPUS_SAMPLES) / AUDIO_RATE
    tone = (np.sin(2 * np.pi * hz * t) * 3000).astype(np.int16)
    packets: list[bytes] = []
    for index in range(count):
        chunk = tone[index * OPUS_SAMPLES:(index + 1) * OPUS_SAMPLES]
        data = np.repeat(chunk, 2).reshape(1, -1)  # interleaved stereo
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * OPUS_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        packets.extend(bytes(p) for p in ctx.encode(frame))
    packets.extend(bytes(p) for p in ctx.encode(None))
    if not packets:
        raise RuntimeError("libopus produced no packets")
    return packets


class _Replay(PacedTrack):
    """A paced track of pre-encoded packets: :meth:`take` gives the next payload, ``rtp_step``
    the RTP clock ticks between two, ``time_base`` their clock."""

    raw = False
    "Set before the peer connection starts: bench/criteria_uplink.py sends the packets."
    time_base: fractions.Fraction

    def take(self) -> bytes:
        raise NotImplementedError

    @property
    def rtp_step(self) -> int:
        raise NotImplementedError

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.raw:  # aiortc's sender loop gets nothing, ever: it waits, costing no CPU
            await asyncio.get_running_loop().create_future()
        index = await self._pace()
        self.count -= 1  # take() counts
        packet = av.Packet(self.take())
        packet.pts = index * self.rtp_step
        packet.time_base = self.time_base
        return packet


class ReplayVideo(_Replay):
    """Replays a :func:`vp8_clip` at ``fps`` as encoded packets. ``sender_of`` (set by the
    harness once the peer connection exists) returns this track's ``RTCRtpSender``: its
    "force keyframe" flag, set by a PLI/FIR from the server, makes the next frame the clip's
    keyframe."""

    kind = "video"
    time_base = VIDEO_TIME_BASE

    def __init__(self, clip: list[bytes], fps: int) -> None:
        super().__init__(1 / fps)
        self._clip = clip
        self._step = VIDEO_CLOCK // fps
        self._position = 0
        self.sender_of: Callable[[], Any] | None = None
        self.keyframes_sent = 0
        self.keyframe_requests = 0

    def _requested(self) -> bool:
        sender = self.sender_of() if self.sender_of is not None else None
        if sender is not None and getattr(sender, FORCE_KEYFRAME, False):
            setattr(sender, FORCE_KEYFRAME, False)
            return True
        return False

    def take(self) -> bytes:
        """The next encoded frame (the keyframe when one was requested), without pacing."""
        if self._requested():
            self.keyframe_requests += 1
            self._position = 0
        if self._position == 0:
            self.keyframes_sent += 1
        frame = self._clip[self._position]
        self._position = (self._position + 1) % len(self._clip)
        self.count += 1
        return frame

    @property
    def rtp_step(self) -> int:
        return self._step


class ReplayAudio(_Replay):
    """Replays an :func:`opus_clip` every 20 ms as encoded packets."""

    kind = "audio"
    time_base = AUDIO_TIME_BASE

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__(OPUS_SAMPLES / AUDIO_RATE)
        self._clip = clip
        self._last: float | None = None
        self.send_gaps = 0
        "Packets handed to aiortc more than 100 ms after the previous one (the sender stalled)."
        self.max_send_gap_s = 0.0
        self.gap_at: list[tuple[float, float]] = []
        "(monotonic time, gap) of each send gap > 100 ms."

    def take(self) -> bytes:
        """The next 20 ms Opus packet, without pacing (send gaps are counted here)."""
        now = time.monotonic()
        if self._last is not None:
            gap = now - self._last
            self.max_send_gap_s = max(self.max_send_gap_s, gap)
            if gap > 0.1:
                self.send_gaps += 1
                self.gap_at.append((now, gap))
        self._last = now
        payload = self._clip[self.count % len(self._clip)]
        self.count += 1
        return payload

    @property
    def rtp_step(self) -> int:
        return OPUS_SAMPLES
