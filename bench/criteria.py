"""Contract benchmark for the national minimum criteria: N light bridge points in ONE meeting
with the host on the main screen in HD, through the REAL server, then one point over the cap.

    python bench/criteria.py [--points 40] [--seconds 30] [--warmup 10] [--harness-procs 0]
                             [--host-video camera|hd] [--boost 10] [--timeout 0]

What runs (loopback only; every process is started by this script and stopped by PID):
- the server: ``python -m server serve --port 0 --data-dir <tmp>`` with
  ``signalling.max_participants_per_meeting`` = points + 1 (the host counts), seeded through
  the CLI (points, an admin) and REST (a meeting hosted by point ``P``, points + 1 invited
  communes, the host's device token);
- the host: a bridge agent (``server.bridge``) publishing ``--host-video`` (:data:`HOST_VIDEOS`:
  1280x720@30 VP8 as ``camera``, or ``camera-hd`` + lower renditions) + Opus. The main screen
  is the host by default, so every point receives the host's camera on its ``main`` slot and
  the host's microphone on an ``audio`` slot;
- the points: bridge agents, ``--harness-procs`` processes of them (default: 2–4). Each
  publishes :data:`POINT_VIDEO` (a 160x90 thumbnail at 10 fps) + Opus, and offers 1 ``main``
  + 3 ``audio`` slots that it only *counts* (SRTP unprotect and count in aioice's datagram
  callback: no jitter buffer, no decoder, no per-packet task; ``server.bridge.counting.fast_count``).
Media is pre-encoded once (``bench/criteria_media.py``) and replayed as encoded packets, so the
harness spends its CPU on RTP/SRTP, not on VP8 encoding.

Measured over ``--seconds`` after ``--warmup``, per point: main-screen fps (RTP marker bits
on the main slot), loss (RTP sequence gaps on the main and audio slots), audio gaps (arrival
gaps > 100 ms on the audio slot carrying the host's microphone); the server's CPU (its process
tree, from /proc/<pid>/stat: worker processes included), the harness's and the host's. Then a
point over the cap connects and joins: ``refusal_s`` is the time from its ``join`` to the
``meeting_full`` reply (its message text is in the output, with the Vietnamese catalog text).
Prints ONE JSON object on the last line of stdout (``error`` and every target failed when the
run could not finish). Bounded by a hard timeout. ``CRITERIA_VERBOSE=1``: the children's logs on
stderr; ``CRITERIA_PROFILE=<dir>``: a cProfile dump per harness process over the window.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import json
import logging
import math
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for path in (str(REPO), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from criteria_media import Rendition
from media_fanout import read_json_line, rest, served_and_logged_in, udp_errors

from media.runtime import settle_gc

#: What the host publishes, by ``--host-video`` name. ``camera``: one 1280x720@30 track as the
#: ``camera`` rendition (works with any server). ``hd``: the HD rendition ``camera-hd`` at
#: 1280x720@30 plus ``camera`` 640x360 and ``camera-thumb``, as ``diemcau bridge --hd`` does
#: (needs a server that puts ``camera-hd`` on the main screen). Roles must be ones the agent
#: offers (``server/bridge/offer.py``); the output's ``host_offered`` lists what was offered.
HOST_VIDEOS: dict[str, tuple[Rendition, ...]] = {
    "camera": (Rendition("camera", 1280, 720, 30, 2000, 90),),
    "hd": (Rendition("camera-hd", 1280, 720, 30, 2000, 90), Rendition("camera", 640, 360, 30, 800, 90),
           Rendition("camera-thumb", 160, 90, 10, 100, 30)),
}
#: The host publishes the HD ladder by default (``--host-video camera`` for one 720p track).
DEFAULT_HOST_VIDEO = "hd"
HOST_VIDEO = HOST_VIDEOS[DEFAULT_HOST_VIDEO]
#: Each light point's published video (a thumbnail, as a hall PC's smallest rendition).
POINT_VIDEO: tuple[Rendition, ...] = (Rendition("camera-thumb", 160, 90, 10, 100, 30),)
HOST_CODE = "P"
AUDIO_GAP_S = 0.1
TARGETS = {"joined": "== points", "main_fps_min": ">= 25", "loss_pct_max": "< 1",
           "audio_gaps_per_min": "== 0", "refusal_s": "< 1 (and refused with meeting_full)"}
CONTRACT_KEYS = ("joined", "main_fps_min", "main_fps_median", "loss_pct_max", "audio_gaps_per_min",
                 "server_cpu_pct", "refusal_s")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "DIEMCAU_MEDIA_HOST_ADDRESSES": "127.0.0.1",
       "DIEMCAU_SERVER_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}
log = logging.getLogger("bench.criteria")


# --- options and the result -------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--points", type=int, default=40, help="light bridge points that join (the cap is points + 1)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds between every point ready and the window")
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="server CPU with the host alone, before the points join (0 = skip)")
    parser.add_argument("--harness-procs", type=int, default=0, help="processes hosting the points (0 = 2..4 by count)")
    parser.add_argument("--host-video", choices=sorted(HOST_VIDEOS), default=DEFAULT_HOST_VIDEO,
                        help="what the host publishes (see HOST_VIDEOS)")
    parser.add_argument("--timeout", type=float, default=0.0, help="hard limit for the whole run (0 = from the sizes)")
    parser.add_argument("--boost", type=int, default=10,
                        help="nice -BOOST for every process started, as bench/media_fanout.py (needs privileges; 0 = off)")
    parser.add_argument("--role", default="orchestrator", choices=["orchestrator", "host", "points"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--meeting", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "orchestrator":
        if not 1 <= args.points <= 500:
            parser.error("--points must be between 1 and 500")
        if args.seconds <= 0 or args.warmup < 0 or args.idle_seconds < 0:
            parser.error("--seconds > 0, --warmup >= 0 and --idle-seconds >= 0")
        if not 0 <= args.harness_procs <= 16:
            parser.error("--harness-procs must be between 0 and 16")
    return args


def harness_processes(points: int, wanted: int = 0) -> int:
    """How many processes host the points: ``wanted``, else 2–4 (about 10 points each)."""
    if wanted > 0:
        return min(wanted, points)
    return min(points, max(2, min(4, math.ceil(points / 10))))


def hard_timeout(args: argparse.Namespace) -> float:
    return args.timeout if args.timeout > 0 else 180 + args.warmup + args.idle_seconds + args.seconds + 3 * args.points


def summarize(*, points: int, seconds: float, per_point: list[dict[str, Any]], server_cpu_pct: float,
              harness_cpu_pct: float, host_cpu_pct: float, refusal: dict[str, Any],
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The result object (the contract's keys, the targets and whether each passed).

    ``per_point``: one dict per point that was started, with ``joined`` (bool), ``main_fps``,
    ``lost``/``expected`` (main + audio slots), ``audio_gaps`` and ``window_s``."""
    joined = sum(1 for p in per_point if p.get("joined"))
    measured = [p for p in per_point if p.get("joined")]
    fps = [float(p.get("main_fps", 0.0)) for p in measured]
    losses = [100 * p["lost"] / p["expected"] if p.get("expected") else 100.0 for p in measured]
    gaps_per_min = [60 * p.get("audio_gaps", 0) / max(p.get("window_s", seconds), 1e-6) for p in measured]
    missing_audio = sum(1 for p in measured if not p.get("audio_packets"))
    refusal_s = refusal.get("refusal_s")
    result: dict[str, Any] = {
        "joined": joined,
        "main_fps_min": round(min(fps), 2) if fps else 0.0,
        "main_fps_median": round(statistics.median(fps), 2) if fps else 0.0,
        "loss_pct_max": round(max(losses), 3) if losses else 100.0,
        "audio_gaps_per_min": round(max(gaps_per_min), 2) if gaps_per_min else None,
        "server_cpu_pct": round(server_cpu_pct, 2),
        "refusal_s": None if refusal_s is None else round(float(refusal_s), 4),
        "points": points,
        "seconds": seconds,
        "harness_cpu_pct": round(harness_cpu_pct, 2),
        "host_cpu_pct": round(host_cpu_pct, 2),
        "audio_gaps_total": sum(int(p.get("audio_gaps", 0)) for p in measured),
        "audio_missing_points": missing_audio,
        "audio_not_from_host_points": sum(1 for p in measured if p.get("audio_packets") and not p.get("audio_from_host", True)),
        "loss_pct_median": round(statistics.median(losses), 3) if losses else 100.0,
        "refusal_code": refusal.get("code"),
        "refusal_message": refusal.get("message"),
        "refusal_message_vi": refusal.get("message_vi"),
        "targets": dict(TARGETS),
    }
    result["pass"] = {
        "joined": joined == points,
        "main_fps_min": bool(fps) and min(fps) >= 25.0,
        "loss_pct_max": bool(losses) and max(losses) < 1.0,
        "audio_gaps_per_min": bool(gaps_per_min) and max(gaps_per_min) == 0 and missing_audio == 0,
        "refusal_s": refusal_s is not None and float(refusal_s) < 1.0 and refusal.get("code") == "meeting_full",
    }
    result["pass"]["all"] = all(result["pass"].values())
    if extra:
        result.update(extra)
    return result


# --- child roles ----------------------------------------------------------------------------------

def install_replay_sources(renditions: tuple[Rendition, ...], registry: dict[str, Any],
                           label: str = "Điểm cầu", uplink: Any = None) -> None:
    """Make every bridge agent of this process publish pre-encoded clips (``renditions`` +
    Opus) instead of encoding live, and count what it receives even while publishing. With
    ``uplink`` (a ``criteria_uplink.RawUplink``), its pacing loop sends the clips instead of
    aiortc's per-track sender loops (the light points; the host keeps aiortc's sender)."""
    from criteria_media import ReplayAudio, ReplayVideo, opus_clip, vp8_clip

    import server.bridge.agent as agent_module
    from server.bridge.offer import MediaLink
    from server.bridge.sources import Sources

    # encoded once, before any agent starts (one clip per role for the whole process)
    clips = {r.role: vp8_clip(r, label) for r in renditions}
    audio = opus_clip()

    def open_sources(video: str, audio_spec: str, *, label: str = "", **_: Any) -> Sources:
        sources = Sources()
        for r in renditions:
            sources.tracks[r.role] = ReplayVideo(clips[r.role], r.fps)
        sources.tracks["mic"] = ReplayAudio(audio)
        for track in sources.tracks.values():
            track.raw = uplink is not None
        registry[label] = sources
        return sources

    class CountingLink(MediaLink):
        """Received RTP is counted and dropped even when the agent publishes; once connected,
        SRTP packets are unprotected and counted straight from the ICE connection's datagram
        callback (``server.bridge.counting.fast_count``), skipping aiortc's per-packet queue and task hop."""

        def __init__(self, tracks: Any, **kwargs: Any) -> None:
            kwargs["count_only"] = True
            super().__init__(tracks, **kwargs)
            if uplink is not None:
                uplink.watch(self)

    agent_module.open_sources = open_sources  # type: ignore[attr-defined]
    agent_module.MediaLink = CountingLink  # type: ignore[misc]


def link_senders(agent: Any) -> None:
    """Let the agent's replayed video tracks see their sender's keyframe requests."""
    from criteria_media import ReplayVideo

    for track in agent.sources.tracks.values():
        if isinstance(track, ReplayVideo) and track.sender_of is None:
            def sender_of(track: Any = track) -> Any:
                link = agent.link
                if link is None:
                    return None
                return next((s for s in link.pc.getSenders() if s.track is track), None)
            track.sender_of = sender_of


class PointProbe:
    """Window measurements of one point, on top of the agent's :class:`RtpCounter`: frames
    by marker bit on the main slot, arrival gaps on audio slots."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.counter = agent.counter
        self.recording = False
        self.started_at = 0.0
        self.markers = 0
        self.gaps: dict[str, int] = {}
        self.max_gap: dict[str, float] = {}
        self.gap_at: dict[str, list[tuple[float, int]]] = {}
        self.main_mids: set[str] = set()
        original = self.counter.count
        streams = self.counter.streams

        def count(data: bytes) -> None:
            ssrc = int.from_bytes(data[8:12], "big") if len(data) >= 12 else -1
            before = streams.get(ssrc)
            prev = before.last_at if before is not None else None
            packets = before.packets if before is not None else 0
            original(data)
            if not self.recording:
                return
            stream = streams.get(ssrc)
            if stream is None or stream.packets == packets:  # RTX or malformed: not counted
                return
            if stream.mid in self.main_mids:
                if data[1] & 0x80:
                    self.markers += 1
            elif stream.kind == "audio" and prev is not None and prev >= self.started_at:
                gap = stream.last_at - prev
                if gap > AUDIO_GAP_S:
                    self.gaps[stream.mid] = self.gaps.get(stream.mid, 0) + 1
                    self.gap_at.setdefault(stream.mid, []).append(
                        (round(prev - self.started_at, 2), round(1000 * gap)))
                if gap > self.max_gap.get(stream.mid, 0.0):
                    self.max_gap[stream.mid] = gap

        self.counter.count = count  # the DTLS hook reads it when installed (after the answer)

    def ready(self) -> bool:
        link = self.agent.link
        if link is None or not self.agent.joined.is_set() or not link.connected.is_set():
            return False
        mains = {t.mid for t in link.offered if t.role == "main"}
        by_mid = self.counter.by_mid()
        return all(by_mid.get(m, {}).get("keyframes", 0) > 0 for m in mains) and any(
            v["kind"] == "audio" and v["packets"] > 0 for v in by_mid.values())

    def start(self) -> dict[str, dict[str, Any]]:
        link = self.agent.link
        self.main_mids = {t.mid for t in link.offered if t.role == "main"} if link else set()
        self.started_at = self.counter.clock()
        self.markers, self.gaps, self.max_gap, self.gap_at = 0, {}, {}, {}
        self.recording = True
        return {m: dict(v) for m, v in self.counter.by_mid().items()}

    def stop(self, before: dict[str, dict[str, Any]], window: float, host: str) -> dict[str, Any]:
        if self.counter.drain is not None:  # what arrived before the window closed counts
            self.counter.drain()
        self.recording = False
        after = self.counter.by_mid()
        delta = {m: {k: v[k] - before.get(m, {}).get(k, 0) for k in ("packets", "bytes", "frames", "keyframes",
                                                                     "lost", "expected")} | {"kind": v["kind"]}
                 for m, v in after.items()}
        slots = self.agent.slots
        audio_mids = [m for m, d in delta.items() if d["kind"] == "audio"]
        host_mids = [m for m in audio_mids if (slots.get(m) or {}).get("point_code") == host]
        heard = host_mids[0] if host_mids else max(audio_mids, key=lambda m: delta[m]["packets"], default=None)
        if heard is not None:  # silence at the end of the window is a gap too
            last = max((st.last_at or 0.0 for st in self.counter.streams.values() if st.mid == heard), default=0.0)
            silent = self.counter.clock() - max(last, self.started_at)
            if silent > AUDIO_GAP_S:
                self.gaps[heard] = self.gaps.get(heard, 0) + 1
                self.max_gap[heard] = max(self.max_gap.get(heard, 0.0), silent)
        counted = [m for m in delta if m in self.main_mids or m in audio_mids]
        main = [delta[m] for m in self.main_mids if m in delta]
        return {
            "joined": self.agent.joined.is_set(),
            "window_s": round(window, 3),
            "main_fps": round(self.markers / window, 2) if window > 0 else 0.0,
            "main_fps_timestamps": round(sum(d["frames"] for d in main) / window, 2) if window > 0 else 0.0,
            "main_kbps": round(sum(8 * d["bytes"] for d in main) / window / 1000, 1) if window > 0 else 0.0,
            "main_rendition": next((str((slots.get(m) or {}).get("rendition"))
                                    for m in sorted(self.main_mids)), None),
            "main_packets": sum(d["packets"] for d in main),
            "main_keyframes": sum(d["keyframes"] for d in main),
            "lost": sum(max(0, delta[m]["lost"]) for m in counted),
            "expected": sum(max(0, delta[m]["expected"]) for m in counted),
            "audio_mid": heard,
            "audio_from_host": bool(host_mids),
            "audio_packets": delta[heard]["packets"] if heard else 0,
            "audio_gaps": self.gaps.get(heard, 0) if heard else 0,
            "audio_max_gap_ms": round(1000 * self.max_gap.get(heard, 0.0), 1) if heard else None,
            "audio_gap_at": self.gap_at.get(heard, [])[:10] if heard else [],
        }


class LoopLag:
    """How late this process's event loop wakes up (a stalled harness shows up as gaps that
    the server did not cause): a task sleeping 10 ms, counting oversleeps."""

    def __init__(self, period_s: float = 0.01) -> None:
        self.period = period_s
        self.max_s = 0.0
        self.over_50ms = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.period)
            late = time.monotonic() - t - self.period
            self.max_s = max(self.max_s, late)
            self.over_50ms += late > 0.05

    def reset(self) -> None:
        self.max_s, self.over_50ms = 0.0, 0

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def as_dict(self) -> dict[str, Any]:
        return {"max_ms": round(1000 * self.max_s, 1), "over_50ms": self.over_50ms}


async def stdin_reader() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def role_host(args: argparse.Namespace) -> None:
    """The host point: publishes ``--host-video`` + Opus until SIGTERM; prints a ready line, and
    at the end what it sent in the window (stdin ``start``/``stop``, like the points)."""
    from media.aiortc_hooks import use_host_addresses
    from server.bridge.agent import BridgeAgent
    from server.bridge.options import AgentOptions

    use_host_addresses(("127.0.0.1",))
    registry: dict[str, Any] = {}
    install_replay_sources(HOST_VIDEOS[args.host_video], registry, f"{HOST_CODE} Điểm cầu chủ trì")
    agent = BridgeAgent(AgentOptions(url=args.url, token=args.token, meeting_id=args.meeting, main_slots=0,
                                     audio_slots=0, stats_interval_s=0, label=f"{HOST_CODE} Điểm cầu chủ trì"),
                        out=sys.stderr, patch_ice=False)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    task = asyncio.create_task(agent.run())
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not task.done():
        if agent.link is not None and agent.link.connected.is_set():
            break
        await asyncio.sleep(0.1)
    link_senders(agent)
    offered = [t.role for t in agent.link.offered] if agent.link else []
    from criteria_media import ReplayAudio, ReplayVideo
    tracks = list(agent.sources.tracks.values())  # the agent clears its dict when it stops
    video = [t for t in tracks if isinstance(t, ReplayVideo)]
    audio = [t for t in tracks if isinstance(t, ReplayAudio)]
    settle_gc()
    print(json.dumps({"ready": bool(agent.link and agent.link.connected.is_set()), "offered": offered}), flush=True)
    lag = LoopLag()
    window: dict[str, Any] = {}
    opened = [time.monotonic()]

    def snapshot() -> dict[str, Any]:
        return {"frames_sent": sum(t.count for t in video), "keyframes_sent": sum(t.keyframes_sent for t in video),
                "keyframe_requests": sum(t.keyframe_requests for t in video),
                "audio_send_gaps": sum(t.send_gaps for t in audio),
                "audio_max_send_gap_ms": round(1000 * max((t.max_send_gap_s for t in audio), default=0), 1),
                "audio_send_gap_at": [[round(at - opened[0], 2), round(1000 * gap)]
                                      for t in audio for at, gap in t.gap_at][:10],
                "loop_lag": lag.as_dict()}

    async def control() -> None:
        """stdin ``start``/``stop``: the measurement window (the figures reported are the window's)."""
        reader = await stdin_reader()
        if (await reader.readline()).strip() != b"start":
            return
        lag.reset()
        opened[0] = time.monotonic()
        for t in audio:
            t.send_gaps, t.max_send_gap_s, t.gap_at = 0, 0.0, []
        window.update(snapshot())
        if (await reader.readline()).strip() == b"stop":
            end = snapshot()
            window.update({k: end[k] - window[k] for k in ("frames_sent", "keyframes_sent", "keyframe_requests")},
                          audio_send_gaps=end["audio_send_gaps"], audio_max_send_gap_ms=end["audio_max_send_gap_ms"],
                          audio_send_gap_at=end["audio_send_gap_at"],
                          loop_lag=end["loop_lag"], window=True)

    controller = asyncio.create_task(control())
    code = await task
    controller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await controller
    await lag.stop()
    figures = window if window.get("window") else {**snapshot(), "window": False}
    print(json.dumps({"exit": int(code), **figures}), flush=True)


async def role_points(args: argparse.Namespace) -> None:
    """Hosts light points; stdin ``start`` opens the window, ``stop`` prints the results."""
    from criteria_uplink import RawUplink

    from media.aiortc_hooks import use_host_addresses
    from server.bridge.agent import BridgeAgent
    from server.bridge.options import AgentOptions

    use_host_addresses(("127.0.0.1",))
    registry: dict[str, Any] = {}
    uplink = RawUplink()
    install_replay_sources(POINT_VIDEO, registry, uplink=uplink)
    entries = json.loads(Path(args.tokens_file).read_text())  # [[code, invitation token], ...]
    quiet = io.StringIO()
    agents = [BridgeAgent(AgentOptions(url=args.url, token=token, main_slots=1, audio_slots=3, stats_interval_s=0,
                                       label=code), out=quiet, patch_ice=False) for code, token in entries]
    probes = [PointProbe(a) for a in agents]
    tasks = []
    for agent in agents:  # staggered: ~10 joins a second per process
        tasks.append(asyncio.create_task(agent.run()))
        await asyncio.sleep(0.1)
    deadline = time.monotonic() + 60 + 2 * len(agents)
    while time.monotonic() < deadline and not all(p.ready() for p in probes):
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.2)
    for agent in agents:
        link_senders(agent)
    settle_gc()
    print(json.dumps({"joined": sum(a.joined.is_set() for a in agents), "ready": sum(p.ready() for p in probes),
                      "of": len(agents)}), flush=True)
    reader = await stdin_reader()
    if (await reader.readline()).strip() != b"start":
        return
    lag = LoopLag()
    before = [p.start() for p in probes]
    wall0 = time.monotonic()
    profile = None
    if os.environ.get("CRITERIA_PROFILE"):  # a directory: one cProfile dump per harness process
        import cProfile
        profile = cProfile.Profile()
        profile.enable()
    await reader.readline()
    window = time.monotonic() - wall0
    if profile is not None:
        profile.disable()
        profile.dump_stats(str(Path(os.environ["CRITERIA_PROFILE"]) / f"points-{os.getpid()}.prof"))
    await lag.stop()
    results = [{"code": code} | p.stop(b, window, HOST_CODE) for (code, _), p, b in zip(entries, probes, before)]
    sending = uplink.streams
    await uplink.close()
    for agent in agents:
        agent.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"points": results, "loop_lag": lag.as_dict(), "uplink_streams": sending,
                      "uplink_failed": uplink.failed}), flush=True)


# --- the orchestrator ----------------------------------------------------------------------------

def die_with_parent() -> None:
    """In a child before exec: SIGTERM when this script dies, even by SIGKILL (Linux prctl
    PR_SET_PDEATHSIG), so no server or agent outlives a killed run."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Procs:
    """Child processes of this run, stopped by PID (SIGTERM, then SIGKILL), never by name."""

    def __init__(self, boost: int = 0) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.boost = boost
        self.boosted = 0

    async def start(self, *argv: str, stdin: bool = False, cwd: Path = REPO,
                    env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env or ENV, stdout=asyncio.subprocess.PIPE,
            stderr=None if os.environ.get("CRITERIA_VERBOSE") else asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        self.procs.append(proc)
        if self.boost:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, proc.pid, -self.boost)
                self.boosted += 1
        return proc

    @staticmethod
    async def stop(proc: asyncio.subprocess.Process, timeout: float = 15) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def stop_all(self) -> None:
        for proc in reversed(self.procs):
            await self.stop(proc)


TICK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds utime+stime) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def process_trees(roots: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """CPU seconds of every process in each group of process trees (the roots and all their
    descendants alive now: a server's media worker processes belong to the server), from ONE
    scan of /proc."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = proc_stat(int(entry))
            if found is not None:
                parents[int(entry)], cpu[int(entry)] = found
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    out: dict[str, dict[int, float]] = {}
    for name, pids in roots.items():
        found_cpu: dict[int, float] = {}
        stack = list(pids)
        while stack:
            pid = stack.pop()
            found_cpu[pid] = cpu.get(pid, 0.0)
            stack.extend(children.get(pid, ()))
        out[name] = found_cpu
    return out


def cpu_of(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds of each group of process trees (see :func:`process_trees`)."""
    return {name: sum(tree.values()) for name, tree in process_trees(roots).items()}


def command_name(pid: int, root: int) -> str:
    """``server`` for the root, else the module (``-m``) or program name, with the pid."""
    if pid == root:
        return "server"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"gone {pid}"
    module = argv[argv.index(b"-m") + 1].decode() if b"-m" in argv else Path(argv[0].decode()).name
    return f"{module} {pid}"


async def cli(tmp: Path, env: dict[str, str], *argv: str, stdin: bytes = b"") -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", *argv, cwd=tmp, env=env,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    await proc.communicate(stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"diemcau {' '.join(argv[:2])} failed ({proc.returncode})")


async def seed_and_serve(procs: Procs, tmp: Path, points: int) -> dict[str, Any]:
    """Start the seeded server: url, pid, meeting id, host device token, [code, link token] of
    points + 1 invited points (the last one is the one over the cap)."""
    codes = [f"X{i:03d}" for i in range(1, points + 2)]
    rows = ["code,name,level,parent", f"{HOST_CODE},Tỉnh Hòa Bình,province,", f"D,Huyện Lạc Sơn,district,{HOST_CODE}"]
    rows += [f"{c},Xã thử {c},commune,D" for c in codes]
    (tmp / "points.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cap = points + 1  # the host is a participant too
    env = {**ENV, "DIEMCAU_SIGNALLING_MAX_PARTICIPANTS_PER_MEETING": str(cap)}
    data = ["--data-dir", str(tmp / "data")]
    await cli(tmp, env, "points", "import", str(tmp / "points.csv"), *data)
    await cli(tmp, env, "users", "create", "--username", "bench", "--role", "admin", "--password-stdin", *data,
              stdin=b"bench-password-123\n")
    server = await procs.start(sys.executable, "-m", "server", "serve", "--port", "0", *data, cwd=tmp, env=env)
    url, token = await served_and_logged_in(server)
    starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    meeting = await asyncio.to_thread(rest, url, "POST", "/api/meetings",
                                      {"title": "Đo tiêu chí 40 điểm cầu", "starts_at": starts,
                                       "host_point_code": HOST_CODE}, token)
    invited = await asyncio.to_thread(rest, url, "POST", f"/api/meetings/{meeting['id']}/invitations",
                                      {"codes": codes}, token)
    links = [[c, invited["links"][c].rsplit("/", 1)[-1]] for c in codes]
    listed = await asyncio.to_thread(rest, url, "GET", "/api/points", None, token)
    items = listed["items"] if isinstance(listed, dict) else listed
    pid = next(p["id"] for p in items if p["code"] == HOST_CODE)
    device = (await asyncio.to_thread(rest, url, "POST", f"/api/points/{pid}/tokens", {"label": "bench"}, token))
    return {"url": url, "server": server, "meeting": int(meeting["id"]), "host_token": device["token"],
            "links": links, "cap": cap}


async def try_join_over_cap(url: str, token: str, meeting_id: int) -> dict[str, Any]:
    """A point over the cap: connect, hello, then time ``join`` → its error reply."""
    from websockets.asyncio.client import connect

    from server.i18n import I18n

    ws_url = url.replace("http://", "ws://", 1).rstrip("/") + "/ws"
    t0 = time.monotonic()
    async with connect(ws_url, open_timeout=10, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token, "id": "hello"}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if welcome.get("type") != "welcome":
            return {"code": welcome.get("code"), "message": welcome.get("message"), "refusal_s": None}
        t1 = time.monotonic()
        await ws.send(json.dumps({"type": "join", "meeting_id": meeting_id, "id": "join"}))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply.get("re") == "join":
                break
        t2 = time.monotonic()
    code = reply.get("code") if reply.get("type") == "error" else reply.get("type")
    details = reply.get("details") or {}
    vi = I18n().error_message("vi", str(code), **details) if reply.get("type") == "error" else None
    return {"code": code, "message": reply.get("message"), "message_vi": vi, "details": details,
            "refusal_s": t2 - t1 if reply.get("type") == "error" else None, "connect_and_refuse_s": t2 - t0}


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = round(os.getloadavg()[0], 2)
    procs = Procs(boost=args.boost)
    if args.boost:  # the orchestrator's own timing too
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, -args.boost)
    me = str(Path(__file__).resolve())
    nprocs = harness_processes(args.points, args.harness_procs)
    with tempfile.TemporaryDirectory(prefix="diemcau-criteria-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            seeded = await seed_and_serve(procs, tmp, args.points)
            url, server, meeting = seeded["url"], seeded["server"], seeded["meeting"]
            print(f"server {url} pid {server.pid}; meeting {meeting}; cap {seeded['cap']}", file=sys.stderr, flush=True)
            host = await procs.start(sys.executable, me, "--role", "host", "--url", url, "--token",
                                     seeded["host_token"], "--meeting", str(meeting),
                                     "--host-video", args.host_video, stdin=True)
            host_ready = await read_json_line(host, 120)
            print(f"host: {json.dumps(host_ready)}", file=sys.stderr, flush=True)
            host_only = 0.0
            if args.idle_seconds > 0:  # the server with the host alone: the marginal cost per point
                await asyncio.sleep(2)
                idle0, i0 = cpu_of({"server": [server.pid]}), time.monotonic()
                await asyncio.sleep(args.idle_seconds)
                host_only = 100 * (cpu_of({"server": [server.pid]})["server"] - idle0["server"]) / (time.monotonic() - i0)
            links = seeded["links"]
            members, extra_point = links[:args.points], links[args.points]
            groups = [members[i::nprocs] for i in range(nprocs)]
            harness = []
            for i, group in enumerate(groups):
                tokens_file = tmp / f"points-{i}.json"
                tokens_file.write_text(json.dumps(group))
                harness.append(await procs.start(sys.executable, me, "--role", "points", "--url", url,
                                                 "--tokens-file", str(tokens_file), stdin=True))
            ready = [await read_json_line(p, 90 + 3 * len(g)) for p, g in zip(harness, groups)]
            print(f"points: {json.dumps(ready)}", file=sys.stderr, flush=True)
            await asyncio.sleep(args.warmup)
            print(f"window opens at {time.time():.2f}", file=sys.stderr, flush=True)
            for p in [host, *harness]:
                assert p.stdin is not None
                p.stdin.write(b"start\n")
            roots = {"server": [server.pid], "host": [host.pid], "harness": [p.pid for p in harness]}
            trees0 = process_trees(roots)
            t0, udp0 = time.monotonic(), udp_errors()
            loops0 = await asyncio.to_thread(loop_series, url)
            await asyncio.sleep(args.seconds)
            wall = time.monotonic() - t0
            trees1 = process_trees(roots)
            udp1 = udp_errors()
            loops1 = await asyncio.to_thread(loop_series, url)
            cpu0 = {k: sum(v.values()) for k, v in trees0.items()}
            cpu1 = {k: sum(v.values()) for k, v in trees1.items()}
            by_process = {command_name(pid, server.pid): round(100 * (trees1["server"][pid] - c) / wall, 2)
                          for pid, c in sorted(trees0["server"].items()) if pid in trees1["server"]}
            # the point over the cap joins while every other point is still in the meeting
            try:
                refusal = await asyncio.wait_for(try_join_over_cap(url, extra_point[1], meeting), 30)
            except Exception as exc:  # noqa: BLE001 - reported: the refusal target fails
                refusal = {"code": None, "message": f"{type(exc).__name__}: {exc}", "refusal_s": None}
            for p in [host, *harness]:
                assert p.stdin is not None
                p.stdin.write(b"stop\n")
            results = [await read_json_line(p, 60) for p in harness]
            per_point = [pt for r in results for pt in r["points"]]
            for p in harness:
                await procs.stop(p, 30)
            await procs.stop(host)
            host_summary: dict[str, Any] = {}
            if host.stdout is not None:
                with contextlib.suppress(Exception):
                    host_summary = await read_json_line(host, 5)
        finally:
            await procs.stop_all()
    pct = {k: 100 * (cpu1[k] - cpu0[k]) / wall for k in cpu0}
    host_video = HOST_VIDEOS[args.host_video]
    rendition_text = ", ".join(f"{r.role} {r.width}x{r.height}@{r.fps}" for r in host_video)
    return summarize(
        points=args.points, seconds=round(wall, 2), per_point=per_point, server_cpu_pct=pct["server"],
        harness_cpu_pct=pct["harness"], host_cpu_pct=pct["host"], refusal=refusal,
        extra={"cap": seeded["cap"], "harness_processes": nprocs, "warmup_s": args.warmup,
               "server_cpu_pct_by_process": by_process,
               "server_cpu_pct_host_only": round(host_only, 2) if args.idle_seconds > 0 else None,
               "server_cpu_pct_per_point": round(max(0.0, pct["server"] - host_only) / args.points, 3)
               if args.idle_seconds > 0 else None,
               "host_video": rendition_text + " VP8 (pre-encoded, "
               + ", ".join(f"{r.kbps} kbps" for r in host_video) + ") + Opus",
               "host_video_option": args.host_video,
               "host_offered": host_ready.get("offered"), "host": host_summary,
               "priority_boost": args.boost if procs.boosted else 0,
               "point_video": ", ".join(f"{r.role} {r.width}x{r.height}@{r.fps}" for r in POINT_VIDEO) + " + Opus",
               "main_renditions": dict(collections.Counter(str(p.get("main_rendition")) for p in per_point)),
               "main_kbps_median": round(statistics.median(p["main_kbps"] for p in per_point), 1) if per_point else 0,
               "main_fps_by_timestamps_min": round(min((p["main_fps_timestamps"] for p in per_point), default=0), 2),
               "ready_before_window": sum(r["ready"] for r in ready),
               "harness_loop_lag": [r.get("loop_lag") for r in results],
               "harness_uplink_streams": sum(int(r.get("uplink_streams") or 0) for r in results),
               "harness_uplink_failed": sum(int(r.get("uplink_failed") or 0) for r in results),
               "refusal_connect_and_refuse_s": round(refusal.get("connect_and_refuse_s") or 0, 4),
               "udp_buffer_errors_machine": {k: udp1[k] - udp0[k] for k in udp0},
               "server_event_loops": loop_window(loops0, loops1),
               "cpus": os.cpu_count(), "loadavg_1m_at_start": load_at_start,
               "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
               "per_point": per_point})


LOOP_PREFIX = "diemcau_event_loop_"


def loop_series(url: str) -> dict[tuple[str, str, str], float]:
    """The server's event-loop series (media/loop_monitor.py) from ``/metrics``:
    (name, process, le) → value."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        return parse_loop_series(resp.read().decode())


def parse_loop_series(text: str) -> dict[tuple[str, str, str], float]:
    """Parsed with prometheus_client's own text parser; names without the common prefix."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(LOOP_PREFIX):
            continue
        for sample in family.samples:
            name = sample.name.removeprefix(LOOP_PREFIX)
            out[(name, sample.labels.get("process", ""), sample.labels.get("le", ""))] = sample.value
    return out


def loop_window(before: dict[tuple[str, str, str], float],
                after: dict[tuple[str, str, str], float]) -> dict[str, dict[str, int]]:
    """Per process kind over the window: wakeups > 50 ms late, and one-second reports whose
    worst lag was over 50 / 100 ms (a stalled server process is the server's fault)."""
    def delta(key: tuple[str, str, str]) -> int:
        return int(after.get(key, 0) - before.get(key, 0))

    out: dict[str, dict[str, int]] = {}
    for process in sorted({k[1] for k in after}):
        count = delta(("lag_seconds_count", process, ""))
        out[process] = {"reports": count, "stalls_over_50ms": delta(("stalls_total", process, "")),
                        "seconds_lag_over_50ms": count - delta(("lag_seconds_bucket", process, "0.05")),
                        "seconds_lag_over_100ms": count - delta(("lag_seconds_bucket", process, "0.1"))}
    return out


def suspects(result: dict[str, Any]) -> list[str]:
    """Why a failed target may be the machine's or the harness's fault, not the server's."""
    out: list[str] = []
    host = result.get("host") or {}
    if host.get("audio_send_gaps"):
        out.append(f"the host itself stalled: {host['audio_send_gaps']} audio send gaps > 100 ms "
                   f"(max {host.get('audio_max_send_gap_ms')} ms, at {host.get('audio_send_gap_at')})")
    lags = [lag for lag in (result.get("harness_loop_lag") or []) if lag]
    worst = max((lag.get("max_ms", 0) for lag in lags), default=0)
    if worst > 100:
        out.append(f"a harness process's event loop stalled up to {worst} ms")
    if (host.get("loop_lag") or {}).get("max_ms", 0) > 100:
        out.append(f"the host's event loop stalled up to {host['loop_lag']['max_ms']} ms")
    udp = result.get("udp_buffer_errors_machine") or {}
    errors = udp.get("RcvbufErrors", 0) + udp.get("SndbufErrors", 0)  # InErrors includes RcvbufErrors
    if errors:
        out.append(f"the kernel dropped UDP datagrams (socket buffers full: {errors} machine-wide)")
    cpus = result.get("cpus") or 1
    load = result.get("loadavg_1m_at_start") or 0  # at the end it counts the bench's own processes
    if load > cpus:
        out.append(f"the machine was busy before the run (load average {load} on {cpus} CPUs)")
    return out


async def run_bounded(args: argparse.Namespace) -> dict[str, Any]:
    """The orchestrator under a hard timeout; SIGINT/SIGTERM cancel it (children stopped)."""
    task = asyncio.create_task(orchestrate(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    result = await asyncio.wait_for(task, hard_timeout(args))
    result["suspects"] = suspects(result)
    return result


def failure(args: argparse.Namespace, error: BaseException) -> dict[str, Any]:
    """The result when the run could not finish (still one JSON object, every target failed)."""
    text = "timed out" if isinstance(error, TimeoutError) else f"{type(error).__name__}: {error}"
    return {**dict.fromkeys(CONTRACT_KEYS), "points": args.points, "seconds": args.seconds,
            "error": text, "targets": dict(TARGETS), "pass": {**dict.fromkeys(TARGETS, False), "all": False}}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.role == "orchestrator":
        try:
            result = asyncio.run(run_bounded(args))
        except (Exception, asyncio.CancelledError) as exc:
            log.exception("the run failed")
            result = failure(args, exc)
        print(json.dumps(result, ensure_ascii=False), flush=True)
        if "error" in result:
            sys.exit(1)
        return
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    role = {"host": role_host, "points": role_points}[args.role]
    asyncio.run(role(args))


if __name__ == "__main__":
    main()
