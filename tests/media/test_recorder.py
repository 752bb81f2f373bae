"""The recorder process (media/recorder.py) fed over a real packet link by sources pushed
from encoder loops in the test process (VP8 cameras of two sizes, Opus tones); the file is read
back with PyAV."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from media import CodecSpec, MediaError, Source, make_packet
from media.recorder import RecorderProcess
from media.recorder_engine import OutputSpec, vp8_depayload


class Feeder:
    """Encodes a test pattern (or a tone) and pushes its packets into a local Source."""

    def __init__(self, source_id: str, kind: str, size: tuple[int, int] = (320, 240)) -> None:
        codec = CodecSpec("video", "VP8", 90000) if kind == "video" else CodecSpec("audio", "OPUS", 48000)
        self.source = Source(source_id, source_id.split(":")[0], codec,
                             request_keyframe=self.request_keyframe)
        self.kind, self.size = kind, size
        self.keyframe_requests = 0
        self._want = False
        self.seq = 1

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._want = True

    async def run(self, stop: asyncio.Event) -> None:
        if self.kind == "video":
            enc = Vp8Encoder()
            w, h = self.size
            img = np.zeros((h, w, 3), np.uint8)
            img[:, :, 0] = 200  # bright enough to tell from the black bars
            n = 0
            while not stop.is_set():
                img[:, :, 1] = (n * 9) % 255
                frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
                frame.pts, frame.time_base = n * 6000, fractions.Fraction(1, 90000)
                force, self._want = self._want, False
                payloads, ts = enc.encode(frame, force_keyframe=force)
                self._push(payloads, ts)
                n += 1
                await asyncio.sleep(1 / 15)
        else:
            enc = OpusEncoder()
            t = np.arange(960) / 48000
            tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
            n = 0
            while not stop.is_set():
                frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
                frame.sample_rate, frame.pts = 48000, n * 960
                frame.time_base = fractions.Fraction(1, 48000)
                payloads, ts = enc.encode(frame)
                self._push(payloads, ts)
                n += 1
                await asyncio.sleep(0.02)

    def _push(self, payloads: list[bytes], ts: int) -> None:
        for i, payload in enumerate(payloads):
            self.source.push(make_packet(self.source.codec, self.seq & 0xFFFF, ts,
                                         i == len(payloads) - 1, payload))
            self.seq += 1


def test_vp8_depayload_reads_the_descriptor() -> None:
    # X=1, S=1, PID=0; I=1 with a 15-bit picture id; then a keyframe header (P bit clear)
    data, start, key = vp8_depayload(bytes([0x90, 0x80, 0x81, 0x23, 0x10, 0x02]))
    assert (data, start, key) == (bytes([0x10, 0x02]), True, True)
    data, start, key = vp8_depayload(bytes([0x00, 0x11]))  # not a start, inter frame
    assert (start, key) == (False, False)
    with pytest.raises(ValueError):
        vp8_depayload(b"")


async def test_recorder_process_switches_video_and_mixes_audio(tmp_path: Path) -> None:
    cams = [Feeder("a:cam", "video", (320, 240)), Feeder("b:cam", "video", (176, 144))]
    mics = [Feeder("a:mic", "audio"), Feeder("b:mic", "audio")]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(f.run(stop)) for f in (*cams, *mics)]
    final = tmp_path / "rec.webm"
    rec = RecorderProcess(OutputSpec(final.with_name("rec.webm.part"), 640, 360, 10, 500_000,
                                     metadata={"title": "Họp thử", "meeting_id": "7"}), final)
    try:
        await rec.open()
        assert rec.sender is not None
        for f in (*cams, *mics):
            rec.sender.forward(f.source)
        await rec.call("select", video="a:cam", audio=["a:mic", "b:mic"])
        await asyncio.sleep(2.0)
        await rec.call("select", video="b:cam", audio=["a:mic", "b:mic"])
        await asyncio.sleep(2.0)
        stats = await rec.call("stats")
        assert stats["decoded_video"] > 10 and stats["decoded_audio"] > 100
        result = await rec.call("stop", timeout=20)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await rec.close()
    assert rec.process is not None and rec.process.returncode == 0
    assert cams[1].keyframe_requests >= 1  # the switch asked the new source for a keyframe
    assert final.exists() and not final.with_name("rec.webm.part").exists()
    assert abs(result["duration_s"] - 4.0) < 1.0, result
    with av.open(str(final)) as container:
        assert container.metadata.get("title") == "Họp thử"
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == "vp8" and (video.width, video.height) == (640, 360)
        assert audio.codec_context.name in ("opus", "libopus")
        frames = [f.to_ndarray() for f in container.decode(video)]
    assert abs(len(frames) - 10 * result["duration_s"]) <= 3
    # the second camera (176x144) is letterboxed: black bars at the sides at the end
    last = frames[-1]
    assert last[180, 5] < 30 and last[180, 320] > 30
    with av.open(str(final)) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert np.abs(samples).max() > 0.1  # two mixed tones, not silence


async def test_a_stopped_recorder_refuses_calls(tmp_path: Path) -> None:
    final = tmp_path / "x.webm"
    rec = RecorderProcess(OutputSpec(final.with_name("x.webm.part"), 320, 180, 5), final)
    await rec.open()
    try:
        with pytest.raises(MediaError):
            await rec.call("nonsense")
        await rec.call("stop")
        with pytest.raises(MediaError) as info:
            await rec.call("stats")
        assert info.value.code == "peer_closed"
    finally:
        await rec.close()
    assert final.exists()


async def test_an_engine_that_cannot_write_fails_the_recorder_at_once(tmp_path: Path) -> None:
    """The engine thread's exception reaches the recorder's event loop (it used to be lost to
    a NameError in the callback, leaving a recorder that never ends): the process exits with
    an error soon, and no file claims to be a recording."""
    final = tmp_path / "missing-dir" / "x.webm"
    rec = RecorderProcess(OutputSpec(final.with_name("x.webm.part"), 320, 180, 5), final)
    try:
        with contextlib.suppress(MediaError):
            await rec.open()
        assert rec.process is not None
        await asyncio.wait_for(rec.process.wait(), 15)
        assert rec.process.returncode != 0
    finally:
        await rec.close()
    assert not final.exists()
