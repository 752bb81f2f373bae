"""The recording engine (ghi hình): turns the packets of the few sources a recording needs
into one WebM file (VP8 + Opus), decoding only those and encoding once.

- Video: the packets of the *selected* main-screen source are reassembled into VP8 frames
  (RFC 7741 descriptor stripped; a frame is complete when its packets run without a gap from
  the partition start to the marker), decoded, scaled (aspect kept, black bars) to the output
  size. The output runs on its own clock at ``fps``: each tick encodes the latest picture (the
  last one held while a switch waits for the new source's keyframe; black before the first),
  so the file's duration is wall-clock time.
- Audio: each selected Opus source is decoded to 48 kHz mono s16 into its own short FIFO (by
  arrival, so A/V stay in step with wall-clock time); every 20 ms the mixer takes 960 samples of
  each (zeros when a FIFO runs dry), sums them with clipping and encodes one Opus frame. A FIFO
  never holds more than ``MAX_FIFO_S`` (late bursts are trimmed, never accumulated).

Everything here runs in one thread of the recorder process (``media.recorder``): the event
loop only queues packets, so decoding/encoding never delays the link.
"""

from __future__ import annotations

import fractions
import logging
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

RATE = 48000
AUDIO_FRAME = 960  # 20 ms
MIX_DELAY_S = 0.08  # jitter the audio FIFOs absorb before a 20 ms block is mixed
MAX_FIFO_S = 0.3
KEYFRAME_RETRY_S = 0.6


@dataclass(frozen=True)
class OutputSpec:
    """What the file is: where, size, rate, bitrates and container metadata."""

    path: Path
    width: int = 1280
    height: int = 720
    fps: int = 15
    video_bitrate: int = 1_500_000
    audio_bitrate: int = 64_000
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One queued event for the engine thread."""

    source_id: str
    kind: str  # "video" | "audio" | "end"
    sequence: int = 0
    timestamp: int = 0
    marker: bool = False
    payload: bytes = b""


@dataclass
class EngineStats:
    video_frames: int = 0
    audio_samples: int = 0
    decoded_video: int = 0
    decoded_audio: int = 0
    dropped_video_frames: int = 0
    "Frames lost on the way (gap, no marker): each asks for a keyframe."
    skipped_video_frames: int = 0
    "Output frames not written because the recorder fell more than 1 s behind."
    keyframe_requests: int = 0
    cpu_s: float = 0.0
    size: int = 0

    @property
    def duration_s(self) -> float:
        return round(self.audio_samples / RATE, 3)


def vp8_depayload(payload: bytes) -> tuple[bytes, bool, bool]:
    """(frame data, start of partition 0, keyframe start) of one VP8 RTP payload."""
    if not payload:
        raise ValueError("empty VP8 payload")
    first = payload[0]
    pos = 1
    if first & 0x80:  # X: extension byte follows
        ext = payload[pos]
        pos += 1
        if ext & 0x80:  # I: picture id (7 or 15 bits)
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: one byte
            pos += 1
    start = bool(first & 0x10) and (first & 0x07) == 0
    data = payload[pos:]
    return data, start, start and bool(data) and not data[0] & 0x01


class _Assembler:
    """Reassembles one source's VP8 frames; gaps drop the frame and ask for a keyframe."""

    def __init__(self) -> None:
        self.timestamp: int | None = None
        self.parts: list[tuple[int, bytes, bool, bool]] = []
        self.need_keyframe = True

    def push(self, item: Item) -> tuple[bytes, bool] | None | bool:
        """A complete frame (data, keyframe), None (not yet), or False (frame lost)."""
        lost = False
        if self.timestamp is not None and item.timestamp != self.timestamp:
            lost = bool(self.parts)  # the previous frame never got its marker
            self.parts = []
        self.timestamp = item.timestamp
        data, start, key = vp8_depayload(item.payload)
        self.parts.append((item.sequence, data, start, key))
        if not item.marker:
            return False if lost else None
        parts = sorted(self.parts, key=lambda p: (p[0] - self.parts[0][0]) & 0xFFFF)
        self.parts, self.timestamp = [], None
        contiguous = all((b[0] - a[0]) & 0xFFFF == 1 for a, b in zip(parts, parts[1:]))
        if not parts[0][2] or not contiguous:
            return False
        keyframe = parts[0][3]
        if self.need_keyframe and not keyframe:
            return False
        self.need_keyframe = False
        return b"".join(p[1] for p in parts), keyframe


class Engine:
    """Decode the selected sources, mix, encode once, mux (see module doc). Call
    :meth:`run` in a thread; :meth:`put` from the event loop; :meth:`stop` to finish."""

    def __init__(self, spec: OutputSpec, request_keyframe: Callable[[str], None]) -> None:
        self.spec = spec
        self.stats = EngineStats()
        self.queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self.video: str | None = None
        self.audio: frozenset[str] = frozenset()
        self._request_keyframe = request_keyframe
        self._stopping = False
        self._error: BaseException | None = None
        self._assemblers: dict[str, _Assembler] = {}
        self._decoders: dict[str, Any] = {}
        "Source id → its decoder (av's Video/AudioCodecContext: ``create`` is typed as the base)."
        self._fifos: dict[str, np.ndarray] = {}
        self._resamplers: dict[str, av.AudioResampler] = {}
        self._picture: av.VideoFrame | np.ndarray | None = None
        self._decoded: av.VideoFrame | None = None
        self._last_ask: dict[str, float] = {}
        self.started = threading.Event()
        "Set when the output clock starts (the file's time 0)."

    # ------------------------------------------------------------ called from the loop

    def select(self, video: str | None, audio: list[str]) -> None:
        self.video, self.audio = video, frozenset(audio)

    def put(self, item: Item) -> None:
        self.queue.put(item)

    def stop(self) -> None:
        self._stopping = True
        self.queue.put(None)

    # ------------------------------------------------------------ the thread

    def run(self) -> EngineStats:
        spec = self.spec
        tmp = spec.path
        container = av.open(str(tmp), mode="w", format="webm")
        for key, value in spec.metadata.items():
            container.metadata[key] = value
        vstream = container.add_stream("libvpx", rate=spec.fps)
        vstream.width, vstream.height, vstream.pix_fmt = spec.width, spec.height, "yuv420p"
        vstream.bit_rate = spec.video_bitrate
        vstream.codec_context.gop_size = spec.fps * 4
        vstream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                           "threads": "2"}
        astream = container.add_stream("libopus", rate=RATE)
        astream.layout = "mono"
        astream.bit_rate = spec.audio_bitrate
        black = self._black()
        vbase, abase = fractions.Fraction(1, spec.fps), fractions.Fraction(1, RATE)
        start = time.monotonic()
        self.started.set()
        try:
            while True:
                self._drain()  # every queued packet first: VP8 needs every frame decoded
                now = time.monotonic()
                due = int((now - start) * spec.fps) + 1  # frames whose time has come
                if due - self.stats.video_frames > spec.fps:  # > 1 s behind (CPU starved): skip
                    self.stats.skipped_video_frames += due - 1 - self.stats.video_frames
                    self.stats.video_frames = due - 1
                if self.stats.video_frames < due:  # one frame per turn: packets keep flowing
                    if self._decoded is not None:
                        self._picture, self._decoded = self._fit(self._decoded), None
                    frame = black if self._picture is None else self._picture
                    out = av.VideoFrame.from_ndarray(frame, format="yuv420p") \
                        if isinstance(frame, np.ndarray) else frame
                    out.pts, out.time_base = self.stats.video_frames, vbase
                    for packet in vstream.encode(out):
                        container.mux(packet)
                    self.stats.video_frames += 1
                while (self.stats.audio_samples + AUDIO_FRAME) / RATE <= now - start - MIX_DELAY_S:
                    block = self._mix()
                    sound = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16",
                                                       layout="mono")
                    sound.sample_rate, sound.pts, sound.time_base = RATE, self.stats.audio_samples, abase
                    for packet in astream.encode(sound):
                        container.mux(packet)
                    self.stats.audio_samples += AUDIO_FRAME
                if self._stopping:
                    break
                self._ask_keyframe_if_waiting(now)
                wake = start + min(self.stats.video_frames / spec.fps,
                                   MIX_DELAY_S + (self.stats.audio_samples + AUDIO_FRAME) / RATE)
                wait = wake - time.monotonic()
                if wait > 0:
                    try:
                        item = self.queue.get(timeout=wait)
                    except queue.Empty:
                        continue
                    if item is not None:
                        self._handle(item)
            for stream in (vstream, astream):
                for packet in stream.encode(None):
                    container.mux(packet)
        finally:
            container.close()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.stats.cpu_s = usage.ru_utime + usage.ru_stime
            self.stats.size = os.path.getsize(tmp) if tmp.exists() else 0
        return self.stats

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._handle(item)

    def _black(self) -> np.ndarray:
        w, h = self.spec.width, self.spec.height
        img = np.empty((h * 3 // 2, w), np.uint8)
        img[:h] = 16
        img[h:] = 128
        return img

    def _ask_keyframe_if_waiting(self, now: float) -> None:
        sid = self.video
        if sid is None:
            return
        asm = self._assemblers.get(sid)
        if asm is not None and not asm.need_keyframe:
            return
        if now - self._last_ask.get(sid, -1e9) >= KEYFRAME_RETRY_S:
            self._last_ask[sid] = now
            self.stats.keyframe_requests += 1
            self._request_keyframe(sid)

    def _handle(self, item: Item) -> None:
        try:
            if item.kind == "end":
                self._assemblers.pop(item.source_id, None)
                self._decoders.pop(item.source_id, None)
                self._fifos.pop(item.source_id, None)
                self._resamplers.pop(item.source_id, None)
            elif item.kind == "video":
                if item.source_id == self.video:
                    self._video(item)
            elif item.source_id in self.audio:
                self._audio(item)
        except (ValueError, IndexError, av.FFmpegError) as exc:  # a bad packet never stops
            log.debug("recorder: %s packet dropped: %s", item.source_id, exc)

    def _video(self, item: Item) -> None:
        asm = self._assemblers.setdefault(item.source_id, _Assembler())
        done = asm.push(item)
        if done is False:
            self.stats.dropped_video_frames += 1
            asm.need_keyframe = True
            return
        if done is None:
            return
        data, keyframe = done  # type: ignore[misc]
        decoder = self._decoders.get(item.source_id)
        if decoder is None:
            decoder = self._decoders[item.source_id] = av.CodecContext.create("vp8", "r")
        for frame in decoder.decode(av.Packet(data)):
            self.stats.decoded_video += 1
            self._decoded = frame  # scaled only if a tick uses it

    def _fit(self, frame: av.VideoFrame) -> av.VideoFrame | np.ndarray:
        """The frame at the output size, aspect kept (black bars)."""
        w, h = self.spec.width, self.spec.height
        scale = min(w / frame.width, h / frame.height)
        fw, fh = max(2, int(frame.width * scale) & ~1), max(2, int(frame.height * scale) & ~1)
        if (fw, fh) == (w, h):
            return frame.reformat(width=w, height=h, format="yuv420p")
        small = frame.reformat(width=fw, height=fh, format="yuv420p").to_ndarray().reshape(-1)
        canvas = self._black()
        flat = canvas.reshape(-1)
        x, y = ((w - fw) // 2) & ~1, ((h - fh) // 2) & ~1
        flat[:w * h].reshape(h, w)[y:y + fh, x:x + fw] = small[:fw * fh].reshape(fh, fw)
        for plane in range(2):  # U then V, each (h/2 x w/2), after the Y plane
            src = small[fw * fh + plane * (fw * fh // 4):][:fw * fh // 4].reshape(fh // 2, fw // 2)
            dst = flat[w * h + plane * (w * h // 4):][:w * h // 4].reshape(h // 2, w // 2)
            dst[y // 2:y // 2 + fh // 2, x // 2:x // 2 + fw // 2] = src
        return canvas

    def _audio(self, item: Item) -> None:
        decoder = self._decoders.get(item.source_id)
        if decoder is None:
            decoder = self._decoders[item.source_id] = av.CodecContext.create("opus", "r")
            self._resamplers[item.source_id] = av.AudioResampler("s16", "mono", RATE)
        resampler = self._resamplers[item.source_id]
        chunks = [self._fifos.get(item.source_id, np.zeros(0, np.int16))]
        for frame in decoder.decode(av.Packet(item.payload)):
            self.stats.decoded_audio += 1
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16))
        fifo = np.concatenate(chunks)
        limit = int(MAX_FIFO_S * RATE)
        self._fifos[item.source_id] = fifo[-limit:] if len(fifo) > limit else fifo

    def _mix(self) -> np.ndarray:
        total = np.zeros(AUDIO_FRAME, np.int32)
        for sid in list(self._fifos):
            fifo = self._fifos[sid]
            if sid not in self.audio:
                del self._fifos[sid]
                continue
            take = fifo[:AUDIO_FRAME]
            total[:len(take)] += take
            self._fifos[sid] = fifo[AUDIO_FRAME:]
        return np.clip(total, -32768, 32767).astype(np.int16)
