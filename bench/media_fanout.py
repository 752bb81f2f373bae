"""Contract benchmark: one publisher (640x360@30 VP8 + Opus) → N subscribers through the REAL
server (packet passthrough SFU), and aiortc's MediaRelay (decode once, re-encode per
subscriber) as the baseline, in the same run.

    python bench/media_fanout.py [--subscribers N] [--seconds S] [--relay-subscribers 4]

Processes (all on loopback, all started and stopped by this script, by PID):
- the server: ``python -m server serve --port 0 --data-dir <tmp>`` (media.host_addresses
  127.0.0.1), seeded through the CLI (points, admin) and REST (meeting, invitations, token);
- the publisher: a bridge agent (``server.bridge``) with the synthetic camera and tone; a tap
  in its send path records when each video packet leaves (CRC-32 of the payload → time);
- subscribers: receive-only counting bridge agents (one main + three audio slots each, no
  decoding: the DTLS layer is hooked and packets only counted), many per process; one extra
  process holds a single "probe" subscriber that records when each video payload arrives;
- the baseline: this file in ``--role relay`` (a minimal server speaking the same WebSocket
  messages, forwarding with ``aiortc.contrib.media.MediaRelay``), the same publisher and
  ``--relay-subscribers`` counting subscribers.

CPU is read from /proc/<pid>/stat (utime+stime of the server process AND its media worker
processes, ``media.workers``; also reported per process as ``server_cpu_pct_by_process``) over
the measurement window, first with the publisher alone, then with the subscribers: the
per-subscriber figure is the difference divided by the number of subscribers (marginal cost).
Latency: the publisher's send time and the probe subscriber's arrival time of the same video
payload (the forwarder never rewrites payloads), same machine clock: one forwarding hop
(publisher → server → subscriber, both loopback legs included). Prints ONE JSON object on the
last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TICK = os.sysconf("SC_CLK_TCK")
LOG_DIR: Path | None = Path(os.environ["FANOUT_LOG_DIR"]) if os.environ.get("FANOUT_LOG_DIR") else None
ENV = {**os.environ, "PYTHONPATH": str(REPO), "DIEMCAU_MEDIA_HOST_ADDRESSES": "127.0.0.1",
       "DIEMCAU_SERVER_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}


# --- CPU accounting -----------------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def tree(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and of every descendant now alive (the media workers), by pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                parents[int(entry)], cpu[int(entry)] = found
    out: dict[int, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        out[pid] = cpu.get(pid, 0.0)
        stack.extend(p for p, parent in parents.items() if parent == pid)
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every descendant now alive."""
    return sum(tree(root).values())


def process_name(pid: int, root: int) -> str:
    """``server``, ``media-worker <pid>`` or the command's module for a descendant."""
    if pid == root:
        return "server"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"gone {pid}"
    module = argv[argv.index(b"-m") + 1].decode() if b"-m" in argv else Path(argv[0].decode()).name
    return f"{'media-worker' if module == 'media.worker' else module} {pid}"


def per_process_pct(before: dict[int, float], after: dict[int, float], wall: float,
                    root: int) -> dict[str, float]:
    """CPU % of each process of the server's tree over a window (alive at both ends)."""
    return {process_name(pid, root): round(100 * (after[pid] - before[pid]) / wall, 2)
            for pid in sorted(after) if pid in before}


def udp_errors() -> dict[str, int]:
    """The machine's UDP buffer-overflow counters (/proc/net/snmp: shared by every process)."""
    lines = [x.split() for x in Path("/proc/net/snmp").read_text().splitlines() if x.startswith("Udp:")]
    table = dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))
    return {k: table.get(k, 0) for k in ("RcvbufErrors", "SndbufErrors", "InErrors")}


# --- roles run in child processes -------------------------------------------------------------

async def role_publisher(args: argparse.Namespace) -> None:
    from media.aiortc_hooks import use_host_addresses
    from server.bridge.agent import BridgeAgent
    from server.bridge.options import AgentOptions

    use_host_addresses(("127.0.0.1",))
    from aiortc.codecs import vpx

    # A fixed VP8 bitrate, REMB ignored: both phases then forward the same stream (aiortc
    # would otherwise follow each server's bandwidth estimate, which differs under load).
    vpx.Vp8Encoder.target_bitrate = property(lambda self: args.bitrate,  # type: ignore[assignment]
                                             lambda self, value: None)
    sent: dict[int, float] = {}
    agent = BridgeAgent(AgentOptions(url=args.url, token=args.token, meeting_id=args.meeting,
                                     video="testsrc", audio="tone", main_slots=0, audio_slots=0,
                                     stats_interval_s=5, label="P publisher"),
                        out=sys.stderr, patch_ice=False)
    repeated: set[int] = set()

    def record(crc: int, at: float) -> None:
        if crc in sent:
            repeated.add(crc)  # an identical payload sent twice cannot be matched
        sent[crc] = at

    agent.send_tap = record
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()
    Path(args.probe_file).write_text(json.dumps([kv for kv in sent.items() if kv[0] not in repeated]))


async def role_subscribers(args: argparse.Namespace) -> None:
    """Hosts light subscribers; stdin: ``start`` (window opens), ``stop`` (result line, exit)."""
    from media.aiortc_hooks import use_host_addresses
    from server.bridge.agent import BridgeAgent
    from server.bridge.options import AgentOptions

    use_host_addresses(("127.0.0.1",))
    tokens = json.loads(Path(args.tokens_file).read_text())
    devnull = io.StringIO()  # the agents' JSON lines are not needed here
    agents = [BridgeAgent(AgentOptions(url=args.url, token=t, meeting_id=args.meeting, receive_only=True,
                                       main_slots=1, audio_slots=3, stats_interval_s=0),
                          out=devnull, patch_ice=False) for t in tokens]
    arrivals: dict[int, float] = {}
    recording = False
    if args.probe:
        agents[0].out = sys.stderr
        agents[0].counter.probe = lambda crc, at: arrivals.__setitem__(crc, at) if recording else None
    tasks = []
    for agent in agents:  # staggered: ~10 offers a second per process
        tasks.append(asyncio.create_task(agent.run()))
        await asyncio.sleep(0.1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(a.counter.totals("video")["keyframes"] for a in agents):
        await asyncio.sleep(0.2)
    ready = sum(1 for a in agents if a.counter.totals("video")["keyframes"])
    print(json.dumps({"ready": ready, "of": len(agents)}), flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    assert (await reader.readline()).strip() == b"start"
    before = [(a.counter.totals("video"), a.counter.totals("audio")) for a in agents]
    cpu0, wall0 = time.process_time(), time.monotonic()
    recording = True
    await reader.readline()
    recording = False
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    subs = []
    for agent, (v0, a0) in zip(agents, before):
        v1, a1 = agent.counter.totals("video"), agent.counter.totals("audio")
        subs.append({k: v1[k] - v0[k] for k in v1} | {"audio_" + k: a1[k] - a0[k] for k in a1})
    print(json.dumps({"seconds": wall, "cpu_s": cpu, "subscribers": subs,
                      "arrivals": list(arrivals.items())}), flush=True)
    for agent in agents:
        agent.stop()
    await asyncio.gather(*tasks, return_exceptions=True)


async def role_relay(args: argparse.Namespace) -> None:
    """A minimal server speaking hello/join/ping/media.offer, forwarding with MediaRelay."""
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from websockets.asyncio.server import serve

    from media.aiortc_hooks import use_host_addresses

    use_host_addresses(("127.0.0.1",))
    relay = MediaRelay()
    published: dict[str, Any] = {}
    peers: list[RTCPeerConnection] = []
    drains: list[asyncio.Task[None]] = []

    async def drain(track: Any) -> None:  # keeps the relay reading while nobody subscribes
        while True:
            await track.recv()

    async def answer(msg: dict[str, Any]) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        peers.append(pc)

        @pc.on("track")
        def on_track(track: Any) -> None:
            published[track.kind] = track
            drains.append(asyncio.create_task(drain(relay.subscribe(track, buffered=False))))

        roles = {t["mid"]: t["role"] for t in msg.get("tracks", [])}
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        audio_given = False
        for t in pc.getTransceivers():
            role = roles.get(str(t.mid))
            if role == "main" and "video" in published:
                t.sender.replaceTrack(relay.subscribe(published["video"], buffered=False))
                t.direction = "sendonly"
            elif role == "audio" and "audio" in published and not audio_given:
                t.sender.replaceTrack(relay.subscribe(published["audio"], buffered=False))
                t.direction = "sendonly"
                audio_given = True
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def handler(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            reply: dict[str, Any] | None = None
            kind = msg.get("type")
            if kind == "hello":
                reply = {"type": "welcome", "v": 1, "session": "s", "resume_token": "", "heartbeat_s": 15,
                         "principal": {"kind": "point", "label": "relay", "meeting_id": 1, "user": None,
                                       "point": {"code": "R", "name": "relay", "level": "province"}}}
            elif kind == "join":
                reply = {"type": "joined", "meeting": {"id": 1, "title": "relay", "state": "open"},
                         "you": {"key": "s"}, "presence": [], "chat": []}
            elif kind == "ping":
                reply = {"type": "pong", "t": msg.get("t")}
            elif kind == "media.offer":
                reply = {"type": "media.answer", "sdp": await answer(msg)}
            if reply is not None:
                await ws.send(json.dumps({**reply, "re": msg.get("id")}))

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening {port}", flush=True)
        await stop.wait()
    for task in drains:
        task.cancel()
    await asyncio.gather(*(pc.close() for pc in peers), return_exceptions=True)


# --- the orchestrator ----------------------------------------------------------------------------

class Procs:
    """Child processes this run started; stopped by PID, never by name. With ``boost`` they
    get a higher scheduling priority (nice -boost), so other work on a shared machine starves
    them less; CPU time is counted the same way."""

    def __init__(self, boost: int = 0) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.boost = boost
        self.boosted = 0

    async def start(self, *argv: str, stdin: bool = False, cwd: Path = REPO,
                    boost: bool = False) -> asyncio.subprocess.Process:
        err: Any = asyncio.subprocess.DEVNULL
        if LOG_DIR is not None:
            err = open(LOG_DIR / f"{len(self.procs):02d}-{Path(argv[1]).name}-{argv[3]}.log", "wb")  # noqa: SIM115, ASYNC230
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=ENV, stdout=asyncio.subprocess.PIPE, stderr=err,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL)
        self.procs.append(proc)
        if boost and self.boost:
            try:  # scheduling priority only: CPU time is measured the same way
                os.setpriority(os.PRIO_PROCESS, proc.pid, -self.boost)
                self.boosted += 1
            except OSError:
                pass
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, timeout: float = 15) -> None:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def stop_all(self) -> None:
        for proc in reversed(self.procs):
            await self.stop(proc)


async def read_json_line(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("a child process ended early")
        if line.startswith(b"{"):
            return dict(json.loads(line))


def rest(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


async def served_and_logged_in(server: asyncio.subprocess.Process) -> tuple[str, str]:
    """Wait for a ``serve`` process to print its address; (url, token of the ``bench`` admin
    the seeding created)."""
    assert server.stdout is not None
    while True:
        line = (await asyncio.wait_for(server.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError("the server did not start")
        if "listening on" in line:
            url = line.split("listening on ", 1)[1].split(",")[0].split(" ")[0]
            break
    token = (await asyncio.to_thread(rest, url, "POST", "/api/auth/login",
                                     {"username": "bench", "password": "bench-password-123"}))["token"]
    return url, token


async def seed_and_serve(procs: Procs, tmp: Path, n: int) -> tuple[asyncio.subprocess.Process, str, int, str, list[str]]:
    """Start the seeded server; (process, url, meeting id, publisher token, subscriber tokens)."""
    codes = [f"X{i:03d}" for i in range(1, n + 1)]
    rows = ["code,name,level,parent", "P,Tỉnh Hòa Bình,province,", "D,Huyện Lạc Sơn,district,P"]
    rows += [f"{c},Xã thử {c},commune,D" for c in codes]
    (tmp / "points.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = ["--data-dir", str(tmp / "data")]
    for argv, stdin in ((["points", "import", str(tmp / "points.csv")], b""),
                        (["users", "create", "--username", "bench", "--role", "admin", "--password-stdin"],
                         b"bench-password-123\n")):
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", *argv, *data, cwd=tmp, env=ENV,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
        await proc.communicate(stdin)
        assert proc.returncode == 0, argv
    server = await procs.start(sys.executable, "-m", "server", "serve", "--port", "0", *data, cwd=tmp, boost=True)
    url, token = await served_and_logged_in(server)
    starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    meeting = await asyncio.to_thread(rest, url, "POST", "/api/meetings",
                                      {"title": "Đo tải phát hình", "starts_at": starts, "host_point_code": "P"}, token)
    invited = await asyncio.to_thread(rest, url, "POST", f"/api/meetings/{meeting['id']}/invitations",
                                      {"codes": codes}, token)
    links = [invited["links"][c].rsplit("/", 1)[-1] for c in codes]
    points = await asyncio.to_thread(rest, url, "GET", "/api/points", None, token)
    items = points["items"] if isinstance(points, dict) else points
    pid = next(p["id"] for p in items if p["code"] == "P")
    device = (await asyncio.to_thread(rest, url, "POST", f"/api/points/{pid}/tokens", {"label": "bench"}, token))["token"]
    return server, url, int(meeting["id"]), device, links


async def measure(procs: Procs, *, url: str, meeting: int, pub_token: str, tokens: list[str], server_pid: int,
                  seconds: float, idle_seconds: float, tmp: Path, tag: str, per_process: int,
                  bitrate: int) -> dict[str, Any]:
    """One publisher, then len(tokens) counting subscribers; CPU of ``server_pid`` (and its
    children) with the publisher alone and with the subscribers."""
    me = str(Path(__file__).resolve())
    sent_file = tmp / f"{tag}-sent.json"
    pub = await procs.start(sys.executable, me, "--role", "publisher", "--url", url, "--token", pub_token,
                            "--meeting", str(meeting), "--probe-file", str(sent_file), "--bitrate", str(bitrate),
                            boost=True)
    await asyncio.sleep(5)  # connect, first keyframe, encoder rate settles
    c0, t0 = tree_cpu(server_pid), time.monotonic()
    await asyncio.sleep(idle_seconds)
    idle_pct = 100 * (tree_cpu(server_pid) - c0) / (time.monotonic() - t0)
    groups = [tokens[:1]] + [tokens[i:i + per_process] for i in range(1, len(tokens), per_process)]
    subs: list[asyncio.subprocess.Process] = []
    for i, group in enumerate(g for g in groups if g):
        tokens_file = tmp / f"{tag}-tokens-{i}.json"
        tokens_file.write_text(json.dumps(group))
        argv = [sys.executable, me, "--role", "subscribers", "--url", url, "--meeting", str(meeting),
                "--tokens-file", str(tokens_file)] + (["--probe"] if i == 0 else [])
        subs.append(await procs.start(*argv, stdin=True, boost=True))
    ready = [await read_json_line(p, 90 + 0.5 * len(tokens)) for p in subs]
    await asyncio.sleep(2)
    for p in subs:
        assert p.stdin is not None
        p.stdin.write(b"start\n")
    tree0 = tree(server_pid)
    s0, p0, t0, u0 = sum(tree0.values()), tree_cpu(pub.pid), time.monotonic(), udp_errors()
    await asyncio.sleep(seconds)
    tree1 = tree(server_pid)
    s1, p1, wall, u1 = sum(tree1.values()), tree_cpu(pub.pid), time.monotonic() - t0, udp_errors()
    for p in subs:
        assert p.stdin is not None
        p.stdin.write(b"stop\n")
    results = [await read_json_line(p, 60) for p in subs]
    for p in subs:
        await procs.stop(p, 30)
    await procs.stop(pub)
    sent = {int(k): float(v) for k, v in json.loads(sent_file.read_text())} if sent_file.exists() else {}
    per_sub = [s for r in results for s in r["subscribers"]]
    window = statistics.mean(r["seconds"] for r in results)
    fps = [s["frames"] / window for s in per_sub]
    lost = sum(s["lost"] + s["audio_lost"] for s in per_sub)
    expected = sum(s["expected"] + s["audio_expected"] for s in per_sub)
    delays = sorted(1000 * (at - sent[crc]) for r in results for crc, at in r["arrivals"] if crc in sent)
    delays = [d for d in delays if -1 <= d < 2000]
    n = max(1, len(tokens))
    total_pct = 100 * (s1 - s0) / wall
    return {
        "subscribers": len(tokens), "ready": sum(r["ready"] for r in ready), "seconds": round(wall, 2),
        "server_cpu_pct": round(total_pct, 2), "server_cpu_pct_publisher_only": round(idle_pct, 2),
        "server_processes": len(tree1),
        "server_cpu_pct_by_process": per_process_pct(tree0, tree1, wall, server_pid),
        "cpu_pct_per_subscriber": round(max(0.0, total_pct - idle_pct) / n, 3),
        "cpu_pct_per_subscriber_total": round(total_pct / n, 3),
        "fps_min": round(min(fps), 2) if fps else 0.0,
        "fps_median": round(statistics.median(fps), 2) if fps else 0.0,
        "loss_pct": round(100 * lost / expected, 3) if expected else 100.0,
        "video_kbps_per_subscriber": round(statistics.median(8 * s["bytes"] / window / 1000 for s in per_sub), 1)
        if per_sub else 0.0,
        "video_packets_per_s": round(statistics.median(s["packets"] / window for s in per_sub), 1) if per_sub else 0.0,
        "audio_packets_per_s": round(statistics.median(s["audio_packets"] / window for s in per_sub), 1)
        if per_sub else 0.0,
        "hop_latency_ms_median": round(statistics.median(delays), 3) if delays else None,
        "hop_latency_ms_p99": round(delays[int(0.99 * (len(delays) - 1))], 3) if delays else None,
        "latency_samples": len(delays),
        "harness_cpu_pct": round(100 * sum(r["cpu_s"] for r in results) / wall, 2),
        "harness_processes": len(subs),
        "publisher_cpu_pct": round(100 * (p1 - p0) / wall, 2),
        "udp_buffer_errors_machine": {k: u1[k] - u0[k] for k in u0},
        "keyframes_per_subscriber_median": statistics.median(s["keyframes"] for s in per_sub) if per_sub else 0,
    }


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = round(os.getloadavg()[0], 2)
    procs = Procs(boost=args.boost)
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="diemcau-fanout-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            server, url, meeting, device, links = await seed_and_serve(procs, tmp, args.subscribers)
            print(f"server {url} pid {server.pid}; meeting {meeting}", file=sys.stderr, flush=True)
            passthrough = await measure(procs, url=url, meeting=meeting, pub_token=device, tokens=links,
                                        server_pid=server.pid, seconds=args.seconds, idle_seconds=args.idle_seconds,
                                        tmp=tmp, tag="passthrough", per_process=args.per_process,
                                        bitrate=args.bitrate)
            print(f"passthrough: {json.dumps(passthrough)}", file=sys.stderr, flush=True)
            await procs.stop(server)
            relay = await procs.start(sys.executable, me, "--role", "relay", boost=True)
            assert relay.stdout is not None
            port = int((await asyncio.wait_for(relay.stdout.readline(), 30)).split()[1])
            baseline = await measure(procs, url=f"ws://127.0.0.1:{port}/ws", meeting=1, pub_token="relay-publisher",
                                     tokens=[f"relay-{i}" for i in range(args.relay_subscribers)],
                                     server_pid=relay.pid, seconds=args.seconds, idle_seconds=args.idle_seconds,
                                     tmp=tmp, tag="mediarelay", per_process=args.per_process,
                                     bitrate=args.bitrate)
            print(f"mediarelay: {json.dumps(baseline)}", file=sys.stderr, flush=True)
        finally:
            await procs.stop_all()
    per_pass = passthrough["cpu_pct_per_subscriber"]
    per_relay = baseline["cpu_pct_per_subscriber"]
    return {
        "subscribers": args.subscribers,
        "passthrough_cpu_pct_per_subscriber": per_pass,
        "mediarelay_cpu_pct_per_subscriber": per_relay,
        "ratio": round(per_relay / per_pass, 1) if per_pass > 0 else None,
        "fps_min": passthrough["fps_min"],
        "loss_pct": passthrough["loss_pct"],
        "hop_latency_ms_median": passthrough["hop_latency_ms_median"],
        "harness_cpu_pct": passthrough["harness_cpu_pct"],
        "server_processes": passthrough["server_processes"],
        "server_cpu_pct_by_process": passthrough["server_cpu_pct_by_process"],
        "seconds": args.seconds,
        "resolution": "640x360@30 VP8 + Opus",
        "passthrough": passthrough,
        "mediarelay": baseline,
        "video_bitrate_target": args.bitrate,
        "priority_boost": args.boost if procs.boosted else 0,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": load_at_start,
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--relay-subscribers", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="publisher-only window")
    parser.add_argument("--per-process", type=int, default=25, help="light subscribers per harness process")
    parser.add_argument("--boost", type=int, default=10,
                        help="raise the scheduling priority of every process started by this (0 = off)")
    parser.add_argument("--bitrate", type=int, default=1_200_000, help="the publisher's fixed VP8 bitrate (bit/s)")
    parser.add_argument("--role", default="orchestrator", choices=["orchestrator", "publisher", "subscribers", "relay"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--meeting", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens-file", help=argparse.SUPPRESS)
    parser.add_argument("--probe-file", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "orchestrator":
        if args.subscribers < 1 or args.seconds <= 0:
            parser.error("--subscribers >= 1 and --seconds > 0")
        print(json.dumps(asyncio.run(orchestrate(args))), flush=True)
        return
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    role = {"publisher": role_publisher, "subscribers": role_subscribers, "relay": role_relay}[args.role]
    asyncio.run(role(args))


if __name__ == "__main__":
    main()
