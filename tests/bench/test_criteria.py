"""``bench/criteria.py`` without the load: its options, how it spreads the points over harness
processes, the result object (the contract's keys, targets, pass/fail), the pre-encoded clips
it replays, and the fast counting path on a real aiortc connection. The benchmark itself runs
only by hand (``python bench/criteria.py``): performance is measured in bench/, never in tests."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


criteria = load("criteria")
media = load("criteria_media")


def test_defaults_and_options() -> None:
    args = criteria.parse_args([])
    assert (args.points, args.seconds, args.role) == (40, 30.0, "orchestrator")
    args = criteria.parse_args(["--points", "5", "--seconds", "5", "--harness-procs", "3"])
    assert (args.points, args.seconds, args.harness_procs) == (5, 5.0, 3)
    assert criteria.hard_timeout(args) > args.seconds + args.warmup
    assert criteria.hard_timeout(criteria.parse_args(["--timeout", "50"])) == 50


@pytest.mark.parametrize("argv", [["--points", "0"], ["--points", "501"], ["--seconds", "0"],
                                  ["--warmup", "-1"], ["--harness-procs", "17"], ["--points", "x"],
                                  ["--idle-seconds", "-1"], ["--host-video", "4k"]])
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        criteria.parse_args(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_points_spread_over_two_to_four_processes() -> None:
    assert criteria.harness_processes(40) == 4
    assert criteria.harness_processes(25) == 3
    assert criteria.harness_processes(5) == 2
    assert criteria.harness_processes(1) == 1
    assert criteria.harness_processes(100) == 4
    assert criteria.harness_processes(40, wanted=8) == 8
    assert criteria.harness_processes(3, wanted=8) == 3


def point(fps: float = 30.0, lost: int = 0, expected: int = 1000, gaps: int = 0, joined: bool = True,
          audio: int = 1500) -> dict[str, Any]:
    return {"joined": joined, "main_fps": fps, "lost": lost, "expected": expected, "audio_gaps": gaps,
            "audio_packets": audio, "window_s": 30.0}


def test_result_has_the_contract_keys_and_passes_a_good_run() -> None:
    refusal = {"code": "meeting_full", "message": "this meeting is full (41 connections)",
               "message_vi": "Hội nghị đã đủ số điểm cầu được phép kết nối (41).", "refusal_s": 0.02}
    result = criteria.summarize(points=3, seconds=30.0, per_point=[point(30), point(29.9), point(25.0)],
                                server_cpu_pct=41.5, harness_cpu_pct=80.0, host_cpu_pct=7.0, refusal=refusal)
    for key in criteria.CONTRACT_KEYS:
        assert key in result
    assert result["joined"] == 3
    assert result["main_fps_min"] == 25.0 and result["main_fps_median"] == 29.9
    assert result["loss_pct_max"] == 0.0 and result["audio_gaps_per_min"] == 0.0
    assert result["refusal_s"] == 0.02 and result["refusal_code"] == "meeting_full"
    assert result["refusal_message_vi"].startswith("Hội nghị đã đủ")
    assert set(result["targets"]) == {"joined", "main_fps_min", "loss_pct_max", "audio_gaps_per_min", "refusal_s"}
    assert result["pass"] == {"joined": True, "main_fps_min": True, "loss_pct_max": True,
                              "audio_gaps_per_min": True, "refusal_s": True, "all": True}
    json.dumps(result)  # one JSON object


def test_each_target_can_fail() -> None:
    ok = {"code": "meeting_full", "refusal_s": 0.1}
    base = dict(points=2, seconds=30.0, server_cpu_pct=1.0, harness_cpu_pct=1.0, host_cpu_pct=1.0)
    failed = criteria.summarize(per_point=[point(), point(joined=False)], refusal=ok, **base)
    assert failed["joined"] == 1 and not failed["pass"]["joined"] and not failed["pass"]["all"]
    failed = criteria.summarize(per_point=[point(), point(fps=24.9)], refusal=ok, **base)
    assert not failed["pass"]["main_fps_min"] and failed["pass"]["joined"]
    failed = criteria.summarize(per_point=[point(), point(lost=10, expected=1000)], refusal=ok, **base)
    assert failed["loss_pct_max"] == 1.0 and not failed["pass"]["loss_pct_max"]
    failed = criteria.summarize(per_point=[point(), point(gaps=1)], refusal=ok, **base)
    assert failed["audio_gaps_per_min"] == 2.0 and not failed["pass"]["audio_gaps_per_min"]
    failed = criteria.summarize(per_point=[point(), point(audio=0)], refusal=ok, **base)
    assert failed["audio_missing_points"] == 1 and not failed["pass"]["audio_gaps_per_min"]
    failed = criteria.summarize(per_point=[point(), point()], refusal={"code": "meeting_full", "refusal_s": 1.2},
                                **base)
    assert not failed["pass"]["refusal_s"]
    failed = criteria.summarize(per_point=[point(), point()], refusal={"code": "joined", "refusal_s": None}, **base)
    assert failed["refusal_s"] is None and not failed["pass"]["refusal_s"]
    nobody = criteria.summarize(per_point=[point(joined=False)] * 2, refusal=ok, **base)
    assert nobody["joined"] == 0 and nobody["main_fps_min"] == 0.0 and not nobody["pass"]["all"]


def test_a_failed_run_is_still_one_json_object() -> None:
    result = criteria.failure(criteria.parse_args(["--points", "3"]), TimeoutError())
    assert result["error"] == "timed out" and result["points"] == 3
    assert all(key in result and result[key] is None for key in criteria.CONTRACT_KEYS)
    assert result["pass"]["all"] is False and not any(result["pass"].values())
    json.dumps(result)


def test_suspects_name_a_busy_machine_or_a_stalled_harness() -> None:
    quiet = {"host": {"audio_send_gaps": 0, "loop_lag": {"max_ms": 12.0}}, "harness_loop_lag": [{"max_ms": 20.0}],
             "udp_buffer_errors_machine": {"RcvbufErrors": 0}, "cpus": 2, "loadavg_1m_at_start": 1.2,
             "loadavg_1m_at_end": 3.4}  # at the end the load is the bench's own processes
    assert criteria.suspects(quiet) == []
    busy = {"host": {"audio_send_gaps": 3, "audio_max_send_gap_ms": 250.0, "loop_lag": {"max_ms": 260.0}},
            "harness_loop_lag": [{"max_ms": 20.0}, {"max_ms": 400.0}],
            "udp_buffer_errors_machine": {"RcvbufErrors": 7, "InErrors": 7}, "cpus": 2,
            "loadavg_1m_at_start": 6.5, "loadavg_1m_at_end": 9.0}
    reasons = " / ".join(criteria.suspects(busy))
    for part in ("3 audio send gaps", "up to 400.0 ms", "up to 260.0 ms", "full: 7 machine-wide", "load average 6.5"):
        assert part in reasons, reasons


def test_host_video_is_hd() -> None:
    for name, renditions in criteria.HOST_VIDEOS.items():
        top = renditions[0]
        assert (top.width, top.height, top.fps) == (1280, 720, 30), name
    assert criteria.HOST_VIDEO == criteria.HOST_VIDEOS[criteria.DEFAULT_HOST_VIDEO]
    assert criteria.parse_args([]).host_video == criteria.DEFAULT_HOST_VIDEO
    assert criteria.parse_args(["--host-video", "hd"]).host_video == "hd"
    assert [r.role for r in criteria.HOST_VIDEOS["hd"]][:2] == ["camera-hd", "camera"]
    assert all(r.width <= 320 for r in criteria.POINT_VIDEO)


def test_clips_are_real_vp8_and_opus() -> None:
    """The replayed clip decodes (keyframe first, then delta frames) and the Opus packets too."""
    import av

    from media.codecs import vp8_info

    rendition = media.Rendition("camera-thumb", 160, 90, 10, 100, 12)
    clip = media.vp8_clip(rendition, "X001")
    assert len(clip) == 12
    keyframes = [not (c[0] & 0x01) for c in clip]  # VP8 frame tag: P bit clear = keyframe
    assert keyframes[0] and not any(keyframes[1:])
    descriptor = b"\x90\x80\x01"  # X=1 S=1 PID=0, I=1, 7-bit picture id: how aiortc packs it
    assert vp8_info(descriptor + clip[0]).keyframe_start
    decoder = av.CodecContext.create("vp8", "r")
    frames = [f for c in clip for f in decoder.decode(av.Packet(c))]
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == (160, 90)
    opus = media.opus_clip(0.2)
    assert len(opus) >= 10
    decoder = av.CodecContext.create("opus", "r")
    assert sum(f.samples for p in opus for f in decoder.decode(av.Packet(p))) >= 9 * 960


async def test_replay_track_answers_a_keyframe_request() -> None:
    clip = [b"key", b"d1", b"d2", b"d3"]
    track = media.ReplayVideo(clip, fps=100)

    class Sender:
        pass

    sender = Sender()
    setattr(sender, media.FORCE_KEYFRAME, False)
    track.sender_of = lambda: sender
    sent = [bytes(await track.recv()) for _ in range(3)]
    assert sent == [b"key", b"d1", b"d2"]
    setattr(sender, media.FORCE_KEYFRAME, True)  # what aiortc does on PLI/FIR
    packet = await track.recv()
    assert bytes(packet) == b"key" and track.keyframe_requests == 1
    assert getattr(sender, media.FORCE_KEYFRAME) is False
    assert packet.pts == 3 * 900 and track.keyframes_sent == 2
    track.stop()
    audio = media.ReplayAudio([b"a", b"b"])
    assert [bytes(await audio.recv()) for _ in range(3)] == [b"a", b"b", b"a"]
    audio.stop()
    await asyncio.sleep(0)


async def connect(sender: Any, receiver: Any) -> None:
    """Offer/answer between two local aiortc peers and wait (up to 10 s) until both connect."""
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    for _ in range(100):
        if receiver.connectionState == "connected" and sender.connectionState == "connected":
            return
        await asyncio.sleep(0.1)


async def test_fast_count_counts_a_real_aiortc_stream() -> None:
    """Two aiortc peers over loopback: the replayed clip is sent through aiortc's pack() path
    and counted by the fast path (unprotected in aioice's datagram callback)."""

    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

    from media.aiortc_hooks import use_host_addresses
    from server.bridge.counting import RtpCounter, fast_count

    restore = use_host_addresses(("127.0.0.1",))
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    sender, receiver = RTCPeerConnection(config), RTCPeerConnection(config)
    clip = media.vp8_clip(media.Rendition("camera-thumb", 160, 90, 30, 100, 30), "X001")
    track = media.ReplayVideo(clip, fps=30)
    try:
        sender.addTransceiver(track, direction="sendonly")
        await connect(sender, receiver)
        counter = RtpCounter()
        counter.learn(sender.localDescription.sdp)
        assert fast_count(receiver, counter)
        await asyncio.sleep(1.5)
        video = counter.totals("video")
        assert video["frames"] >= 20 and video["keyframes"] >= 1 and video["lost"] == 0, video
    finally:
        track.stop()
        await sender.close()
        await receiver.close()
        restore()


async def test_raw_uplink_sends_what_aiortc_would_from_one_loop() -> None:
    """The light points' uplink (bench/criteria_uplink.py): raw-mode replay tracks leave
    aiortc's sender loop idle, and one pacing loop sends them through the point's SRTP session:
    the far peer counts whole VP8 frames (keyframe first, nothing lost) and 20 ms Opus, a
    keyframe request jumps to the clip's keyframe, and the sender's report counters move."""
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

    from media.aiortc_hooks import use_host_addresses
    from server.bridge.counting import RtpCounter, fast_count

    uplink_module = load("criteria_uplink")
    restore = use_host_addresses(("127.0.0.1",))
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    sender, receiver = RTCPeerConnection(config), RTCPeerConnection(config)
    clip = media.vp8_clip(media.Rendition("camera-thumb", 160, 90, 10, 100, 30), "X002")
    video, audio = media.ReplayVideo(clip, fps=10), media.ReplayAudio(media.opus_clip(0.2))
    video.raw = audio.raw = True
    uplink = uplink_module.RawUplink()
    try:
        video_sender = sender.addTransceiver(video, direction="sendonly").sender
        sender.addTransceiver(audio, direction="sendonly")
        video.sender_of = lambda: video_sender
        await connect(sender, receiver)
        counter = RtpCounter()
        counter.learn(sender.localDescription.sdp)
        assert fast_count(receiver, counter)
        assert video.count == 0 and audio.count == 0  # aiortc's loops got nothing
        assert uplink.adopt(sender) == 2
        await asyncio.sleep(1.5)
        got_video, got_audio = counter.totals("video"), counter.totals("audio")
        assert got_video["frames"] >= 10 and got_video["keyframes"] >= 1 and got_video["lost"] == 0
        assert got_audio["frames"] >= 60 and got_audio["lost"] == 0
        setattr(video_sender, media.FORCE_KEYFRAME, True)  # what aiortc does on PLI/FIR
        await asyncio.sleep(0.3)
        assert video.keyframe_requests == 1 and counter.totals("video")["keyframes"] >= 2
        assert video_sender._RTCRtpSender__packet_count >= 10
        assert uplink.failed == 0 and uplink.streams == 2
    finally:
        await uplink.close()
        video.stop()
        audio.stop()
        await sender.close()
        await receiver.close()
        restore()


def rtp(seq: int, ts: int, ssrc: int, pt: int, marker: bool = False, payload: bytes = b"\x00" * 20) -> bytes:
    import struct

    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


async def test_point_probe_counts_frames_loss_and_audio_gaps() -> None:
    """Marker bits on the main slot, sequence gaps, and audio arrival gaps > 100 ms on the slot
    carrying the host's microphone (a silent end of the window counts too)."""
    from types import SimpleNamespace

    from server.bridge.counting import RtpCounter
    from server.bridge.offer import OfferedTrack

    now = [1000.0]
    counter = RtpCounter(clock=lambda: now[0])
    counter.learn("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\na=ssrc:111 cname:x\r\n"
                  "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:222 cname:x\r\n")
    connected, joined = asyncio.Event(), asyncio.Event()
    connected.set()
    joined.set()
    link = SimpleNamespace(offered=[OfferedTrack("1", "video", "main"), OfferedTrack("2", "audio", "audio")],
                           connected=connected)
    agent = SimpleNamespace(counter=counter, link=link, joined=joined, slots={"2": {"point_code": "P"}})
    probe = criteria.PointProbe(agent)
    counter.count(rtp(1, 0, 222, 111))  # before the window: not in the figures
    before = probe.start()
    seq = 10
    for frame in range(30):  # 30 frames of 3 packets; packet seq 40 is lost
        for part in range(3):
            if seq != 40:
                counter.count(rtp(seq, frame * 3000, 111, 96, marker=part == 2))
            seq += 1
    for index in range(1, 50):  # audio every 20 ms, one 160 ms hole after packet 20
        now[0] += 0.16 if index == 21 else 0.02
        counter.count(rtp(1 + index, index * 960, 222, 111))
    now[0] += 0.05
    result = probe.stop(before, 1.0, "P")
    assert result["main_fps"] == 30.0 and result["main_fps_timestamps"] == 30.0
    assert result["lost"] == 1 and result["expected"] == 90 + 49
    assert result["audio_mid"] == "2" and result["audio_from_host"]
    assert result["audio_packets"] == 49 and result["audio_gaps"] == 1
    assert result["audio_max_gap_ms"] == 160.0
    # a window in which the host's microphone stays silent: one gap, no frames
    again = probe.start()
    now[0] += 0.5
    silent = probe.stop(again, 0.5, "P")
    assert silent["audio_gaps"] == 1 and silent["audio_max_gap_ms"] == 500.0 and silent["main_fps"] == 0.0


def test_cpu_of_counts_a_process_tree() -> None:
    """This process and a child it started: the child's CPU is in the tree (as a server's media
    workers are), and the child is named by its program."""
    import os
    import subprocess
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ntime.sleep(30)"])
    try:
        for _ in range(100):
            trees = criteria.process_trees({"me": [os.getpid()]})
            if trees["me"].get(child.pid, 0.0) >= 0.2:
                break
            time.sleep(0.05)
        assert trees["me"][child.pid] >= 0.2
        assert criteria.cpu_of({"me": [os.getpid()]})["me"] >= trees["me"][child.pid]
        assert criteria.command_name(os.getpid(), os.getpid()) == "server"
        assert criteria.command_name(child.pid, os.getpid()).endswith(f" {child.pid}")
    finally:
        child.kill()
        child.wait()


def test_server_event_loop_figures_come_from_the_real_metrics_text() -> None:
    """The bench's per-window loop figures parse what server/metrics.py really exposes."""
    from prometheus_client import generate_latest

    from server.metrics import Metrics

    metrics = Metrics()
    metrics.observe_loop("server", 0.004, 0)
    before = criteria.parse_loop_series(generate_latest(metrics.registry).decode())
    for lag, stalls in ((0.003, 0), (0.07, 1), (0.2, 2)):
        metrics.observe_loop("media_worker", lag, stalls)
    metrics.observe_loop("server", 0.06, 1)
    after = criteria.parse_loop_series(generate_latest(metrics.registry).decode())
    window = criteria.loop_window(before, after)
    assert window["media_worker"] == {"reports": 3, "stalls_over_50ms": 3, "seconds_lag_over_50ms": 2,
                                      "seconds_lag_over_100ms": 1}
    assert window["server"] == {"reports": 1, "stalls_over_50ms": 1, "seconds_lag_over_50ms": 1,
                                "seconds_lag_over_100ms": 0}
