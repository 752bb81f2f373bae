"""CPU of the recorder process (media/recorder.py) at a given output size.

A VP8 main-screen source (pre-encoded once, a moving test pattern at --source WxH, 15 fps,
replayed in real time so the bench process itself stays cheap) and --speakers Opus sources
are forwarded over the real packet link to a real recorder process, which decodes the video,
scales it to --width x --height at --fps, mixes the audio and encodes WebM. The recorder's CPU
is read from /proc/<pid>/stat after a warm-up (its start-up imports are not counted).

    python bench/recording_cpu.py --width 1280 --height 720 --fps 15 --seconds 20

Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from media import CodecSpec, Source, make_packet
from media.recorder import RecorderProcess
from media.recorder_engine import OutputSpec

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def encode_clip(width: int, height: int, frames: int) -> list[tuple[list[bytes], int]]:
    enc = Vp8Encoder()
    enc.target_bitrate = 1_200_000
    out = []
    img = np.zeros((height, width, 3), np.uint8)
    for n in range(frames):
        img[:, :, 0] = (np.arange(width) * 255 // width)[None, :]
        img[:, :, 1] = (n * 8) % 255
        x = (n * width) // frames
        img[:, x:x + width // 10, 2] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = n * 6000, fractions.Fraction(1, 90000)
        payloads, _ = enc.encode(frame, force_keyframe=(n == 0))
        out.append((payloads, n * 6000))
    return out


async def replay_video(source: Source, clip: list[tuple[list[bytes], int]], stop: asyncio.Event) -> None:
    seq, n, start = 1, 0, time.monotonic()
    while not stop.is_set():
        payloads, _ = clip[n % len(clip)]
        for i, payload in enumerate(payloads):
            source.push(make_packet(source.codec, seq & 0xFFFF, (n * 6000) & 0xFFFFFFFF,
                                    i == len(payloads) - 1, payload))
            seq += 1
        n += 1
        await asyncio.sleep(max(0.0, start + n / 15 - time.monotonic()))


async def replay_audio(source: Source, packets: list[bytes], stop: asyncio.Event) -> None:
    n, start = 0, time.monotonic()
    while not stop.is_set():
        source.push(make_packet(source.codec, n & 0xFFFF, (n * 960) & 0xFFFFFFFF, False,
                                packets[n % len(packets)], 40))
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))


def opus_packets(freq: float) -> list[bytes]:
    enc = OpusEncoder()
    t = np.arange(960) / 48000
    out = []
    for n in range(50):
        tone = (np.sin(2 * np.pi * freq * (t + n * 0.02)) * 6000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        out.extend(enc.encode(frame)[0])
    return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    sw, sh = (int(v) for v in args.source.split("x"))
    clip = encode_clip(sw, sh, 30)
    video = Source("main:cam", "main", CodecSpec("video", "VP8", 90000))
    mics = [Source(f"s{i}:mic", f"s{i}", CodecSpec("audio", "OPUS", 48000)) for i in range(args.speakers)]
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory() as tmp:
        final = Path(tmp) / "bench.webm"
        rec = RecorderProcess(OutputSpec(final.with_name("bench.webm.part"), args.width, args.height,
                                         args.fps, args.video_bitrate), final)
        await rec.open()
        assert rec.sender is not None and rec.process is not None
        for s in (video, *mics):
            rec.sender.forward(s)
        video.set_keyframe_requester(lambda: None)
        await rec.call("select", video="main:cam", audio=[m.source_id for m in mics])
        tasks = [asyncio.create_task(replay_video(video, clip, stop))]
        tasks += [asyncio.create_task(replay_audio(m, opus_packets(300 + 110 * i), stop))
                  for i, m in enumerate(mics)]
        await asyncio.sleep(args.warmup)
        c0, own0, t0 = cpu_seconds(rec.process.pid), time.process_time(), time.monotonic()
        await asyncio.sleep(args.seconds)
        c1, own1, t1 = cpu_seconds(rec.process.pid), time.process_time(), time.monotonic()
        stats = await rec.call("stop", timeout=30)
        stop.set()
        await asyncio.gather(*tasks)
        await rec.close()
        size = final.stat().st_size
    wall = t1 - t0
    return {"bench": "recording_cpu", "output": f"{args.width}x{args.height}@{args.fps}",
            "source": f"{sw}x{sh}@15", "speakers": args.speakers, "seconds": round(wall, 1),
            "recorder_cpu_pct_of_core": round(100 * (c1 - c0) / wall, 1),
            "feeder_cpu_pct_of_core": round(100 * (own1 - own0) / wall, 1),
            "decoded_video": stats["decoded_video"], "video_frames": stats["video_frames"],
            "dropped_video_frames": stats["dropped_video_frames"],
            "file_bytes": size, "duration_s": stats["duration_s"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--video-bitrate", type=int, default=1_500_000)
    parser.add_argument("--source", default="1280x720")
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
