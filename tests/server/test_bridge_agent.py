"""The headless bridge agent (``diemcau bridge``) against a real app on loopback: hello/join
with device and invitation tokens, resume after a drop, refusals with exit codes, SIGTERM,
media negotiation through the server, and the counting receiver against media.Room."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import CliRunner

from media import MediaConfig, Room
from media.aiortc_hooks import decoder_running, use_host_addresses
from server.bridge.agent import BridgeAgent
from server.bridge.counting import RtpCounter, parse_sections
from server.bridge.offer import MediaLink
from server.bridge.options import AgentError, AgentOptions, ExitCode, parse_size, ws_url
from server.bridge.sources import PatternCamera, ToneMicrophone, open_sources
from server.cli import main
from server.ws import HUB
from tests.conftest import REPO, Api
from tests.media.harness import Client, wait_for
from tests.server.test_ws_kit import Scene, build_scene, until


@pytest.fixture(autouse=True)
def loopback_only() -> Any:
    restore = use_host_addresses(("127.0.0.1",))
    yield
    restore()


@pytest.fixture
async def scene(api: Api) -> Scene:
    return await build_scene(api)


def base_url(scene: Scene) -> str:
    return str(scene.api.client.make_url("/")).rstrip("/")


def link_token(link: str) -> str:
    return link.rsplit("/", 1)[-1]


def options(scene: Scene, token: str, **extra: Any) -> AgentOptions:
    fields: dict[str, Any] = {"video": "none", "audio": "none", "stats_interval_s": 0}
    fields.update(extra)
    return AgentOptions(url=base_url(scene), token=token, **fields)


class Running:
    """An agent running as a task of the test's loop, its JSON lines kept."""

    def __init__(self, agent: BridgeAgent) -> None:
        self.agent = agent
        self.out = io.StringIO()
        agent.out = self.out
        self.task = asyncio.create_task(agent.run())

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.out.getvalue().splitlines() if x]

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [x for x in self.lines() if x["type"] == type_]

    async def stop(self) -> ExitCode:
        self.agent.stop()
        return await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def running() -> AsyncIterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:
        if not r.task.done():
            await r.stop()


def start(running: list[Running], opts: AgentOptions) -> Running:
    r = Running(BridgeAgent(opts, patch_ice=False))
    running.append(r)
    return r


# --- options and CLI ---------------------------------------------------------------------------

def test_urls_sizes_and_option_checks() -> None:
    assert ws_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"
    assert ws_url("https://hop.tinh.gov.vn/diemcau/") == "wss://hop.tinh.gov.vn/diemcau/ws"
    assert ws_url("ws://10.0.0.5:9000") == "ws://10.0.0.5:9000/ws"
    assert ws_url("wss://x.vn/custom/ws") == "wss://x.vn/custom/ws"
    assert parse_size("320x180") == (320, 180)
    for bad in ("big", "320", "321x180", "0x0", "9999x9999"):
        with pytest.raises(AgentError) as exc:
            parse_size(bad)
        assert exc.value.exit_code is ExitCode.USAGE
    with pytest.raises(AgentError):
        AgentOptions(url="ftp://x", token="dcp_x")
    with pytest.raises(AgentError):
        AgentOptions(url="http://x", token=" ")
    opts = AgentOptions(url="http://127.0.0.1:1", token="dcp_x")
    assert opts.host_addresses() == ("127.0.0.1",) and opts.publishes
    assert AgentOptions(url="http://hop.vn", token="t", receive_only=True).host_addresses() == ()
    assert not AgentOptions(url="http://hop.vn", token="t", receive_only=True).publishes


def test_cli_has_the_contract_options_and_rejects_bad_ones() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["bridge", "--help"])
    assert result.exit_code == 0
    for option in ("--url", "--token", "--video", "--audio", "--meeting", "--receive-only"):
        assert option in result.output
    result = runner.invoke(main, ["bridge", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and "--token" in result.output
    result = runner.invoke(main, ["bridge", "--url", "http://127.0.0.1:1", "--token", "dcp_x",
                                  "--video-size", "huge"])
    assert result.exit_code == 2 and "--video-size" in result.output
    result = runner.invoke(main, ["bridge", "--url", "gopher://x", "--token", "dcp_x"])
    assert result.exit_code == 2 and "--url" in result.output


def test_sources_open_and_reject_missing_files(tmp_path: Any) -> None:
    sources = open_sources("testsrc", "tone", size=(160, 90), fps=15, renditions=True, label="D1 Lạc Sơn")
    try:
        assert set(sources.tracks) == {"camera", "camera-low", "camera-thumb", "mic"}
        assert isinstance(sources.tracks["camera"], PatternCamera)
        assert isinstance(sources.tracks["mic"], ToneMicrophone)
    finally:
        sources.close()
    with pytest.raises(AgentError) as exc:
        open_sources(str(tmp_path / "missing.mp4"), "none")
    assert exc.value.exit_code is ExitCode.USAGE
    assert open_sources("none", "none").tracks == {}


def test_the_agent_is_a_client_without_server_code_and_modules_stay_small() -> None:
    import subprocess

    code = ("import sys, server.bridge.agent; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'aiohttp' "
            "or (m.startswith('server.') and not m.startswith('server.bridge'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (REPO / "server" / "bridge").glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, path


async def test_a_forced_keyframe_does_not_stick_to_the_reused_test_frames() -> None:
    from aiortc.codecs.vpx import Vp8Encoder

    from media.codecs import vp8_info

    camera = PatternCamera(64, 36, 2, "")  # a loop of 2 frames, reused
    camera._period = 0  # no pacing in this test
    encoder = Vp8Encoder()
    kinds = []
    for i in range(4):
        frame = await camera.recv()
        payloads, _ts = encoder.encode(frame, force_keyframe=i == 1)
        kinds.append(vp8_info(payloads[0]).keyframe_start)
    assert kinds == [True, True, False, False]  # first frame, forced, then deltas again


# --- signalling: join, refusals, resume ----------------------------------------------------------

async def test_device_token_joins_the_meeting_and_leaves_on_stop(scene: Scene, running: list[Running]) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    r = start(running, options(scene, scene.d1_device, meeting_id=scene.meeting_id))
    seen = await chair.expect("presence", event="joined")
    assert seen["participant"]["point"]["code"] == "D1"
    await until(lambda: bool(r.events("joined")))
    assert r.events("welcome")[0]["principal"]["point"]["code"] == "D1"
    assert await r.stop() is ExitCode.OK
    left = await chair.expect("presence", event="left")
    assert left["reason"] == "left" and left["participant"]["point"]["code"] == "D1"
    assert r.events("summary")


async def test_invitation_token_names_its_meeting(scene: Scene, running: list[Running]) -> None:
    r = start(running, options(scene, link_token(scene.d1_link)))
    await until(lambda: bool(r.events("joined")))
    assert r.events("joined")[0]["meeting"]["id"] == scene.meeting_id
    assert r.agent.meeting_id == scene.meeting_id


async def test_refusals_end_with_clear_exit_codes(scene: Scene) -> None:
    cases = [(options(scene, "dcp_" + "x" * 43, meeting_id=scene.meeting_id), ExitCode.AUTH, "invalid_token"),
             (options(scene, scene.d1_device), ExitCode.JOIN, "join"),
             (options(scene, scene.d3_device, meeting_id=scene.meeting_id), ExitCode.JOIN, "forbidden"),
             (options(scene, scene.d1_device, meeting_id=999999), ExitCode.JOIN, "not_found")]
    for opts, code, error in cases:
        agent = BridgeAgent(opts, out=io.StringIO(), patch_ice=False)
        assert await asyncio.wait_for(agent.run(), 10) is code, error
        lines = [json.loads(x) for x in agent.out.getvalue().splitlines()]  # type: ignore[attr-defined]
        assert any(x["type"] == "error" and x["code"] == error for x in lines), lines
    unreachable = AgentOptions(url="http://127.0.0.1:9", token="dcp_x", video="none", audio="none")
    assert await BridgeAgent(unreachable, out=io.StringIO(), patch_ice=False).run() is ExitCode.UNREACHABLE


async def test_a_dropped_socket_is_resumed_silently(scene: Scene, running: list[Running]) -> None:
    chair, _ = await scene.joined_peer(scene.chair, "chair")
    r = start(running, options(scene, scene.d1_device, meeting_id=scene.meeting_id))
    await chair.expect("presence", event="joined")
    await until(lambda: bool(r.events("joined")))
    hub = scene.api.client.app[HUB]
    session = r.agent.session
    assert session is not None
    key = session.welcome["session"]
    await chair.send("chat", text="trước khi mất mạng")
    await chair.expect("chat")
    session.drop()
    await until(lambda: session.resumes == 1, timeout=10)
    assert session.welcome["type"] == "resumed" and session.welcome["session"] == key
    assert hub.sessions[key].connection is not None
    await chair.silent(0.3)  # no "left", no second "joined"
    assert await r.stop() is ExitCode.OK
    await chair.expect("presence", event="left")


async def test_the_cli_exits_3_on_a_bad_token_and_0_on_sigterm(scene: Scene) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    url = base_url(scene)
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "bridge", "--url", url, "--token", "dcp_nope",
        "--video", "none", "--audio", "none", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(bad.communicate(), 60)
    assert bad.returncode == ExitCode.AUTH, (out, err)
    assert b"invalid_token" in out and b"refused the token" in err

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "bridge", "--url", url, "--token", scene.d2_device,
        "--meeting", str(scene.meeting_id), "--video", "testsrc", "--video-size", "160x90", "--fps", "10",
        "--audio", "tone", "--stats-interval", "0.5", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, "agent ended before joining"
            if json.loads(line)["type"] in ("stats", "media_refused"):  # joined, offered, running
                break
        proc.send_signal(signal.SIGTERM)
        rest, _err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0
        assert any(json.loads(x)["type"] == "summary" for x in rest.splitlines() if x)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- counting receiver and publisher against media.Room (no signalling) ----------------------

async def _connect_link(room: Room, name: str, link: MediaLink) -> None:
    sdp, _offered = await link.make_offer()
    answer = await room.create_peer(name).accept_offer(sdp)
    await link.apply_answer(answer)
    assert await link.wait_connected(10)


async def test_counting_link_counts_frames_keyframes_and_loss_without_decoding() -> None:
    room = Room(MediaConfig())
    pub = Client(room, "pub")
    agent_pub = MediaLink({"camera": PatternCamera(160, 90, 15, "P Tỉnh"), "mic": ToneMicrophone()},
                          main_slots=0, audio_slots=0, count_only=True)
    sub = MediaLink({}, main_slots=1, audio_slots=1, count_only=True)
    try:
        await _connect_link(room, "agent", agent_pub)   # the agent's publishing side
        await pub.connect(video=True, fps=15, size=(160, 90))
        await _connect_link(room, "sub", sub)
        await pub.wait_connected()
        sources = sorted(room.sources)
        assert "agent:0" in sources and "agent:1" in sources
        video_mid, audio_mid = (t.mid for t in sub.offered)
        room.subscribe("sub", "agent:0", video_mid)
        room.subscribe("sub", "agent:1", audio_mid)
        assert await wait_for(lambda: sub.counter.totals("video")["frames"] >= 20, 10)
        video = sub.counter.totals("video")
        assert video["keyframes"] >= 1 and video["lost"] == 0
        assert sub.counter.totals("audio")["frames"] >= 20
        assert not any(decoder_running(t.receiver) for t in sub.pc.getTransceivers())
        assert sub.counter.drain is not None  # read with kernel arrival times
        # Switch the main slot to the harness publisher: counted on the same slot.
        before = sub.counter.by_mid()[video_mid]["frames"]
        room.subscribe("sub", "pub:0", video_mid)
        assert await wait_for(lambda: sub.counter.by_mid()[video_mid]["frames"] > before + 15, 10)
        assert sub.counter.totals("video")["keyframes"] >= 2
    finally:
        await sub.close()
        await agent_pub.close()
        await pub.close()
        await room.close()


async def test_counted_arrival_is_when_the_kernel_queued_the_packet() -> None:
    """A counting socket is read with SO_TIMESTAMPNS: datagrams that waited while this process
    was busy keep the times they arrived, ``drain`` reads what waits at once, and anything
    but RTP still reaches the ICE protocol."""
    import socket

    from server.bridge.counting import _read_with_kernel_time

    loop = asyncio.get_running_loop()
    counter = RtpCounter()
    seen: list[tuple[bytes, float, float]] = []

    class Protocol(asyncio.DatagramProtocol):
        transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            seen.append((data, counter.clock(), time.time()))

    transport, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _read_with_kernel_time(protocol, counter)
        assert counter.drain is not None
        address = transport.get_extra_info("sockname")
        for n in range(3):  # the loop is held up meanwhile: nothing is read
            sender.sendto(b"datagram %d" % n, address)
            time.sleep(0.15)  # noqa: ASYNC251 - on purpose
        counter.drain()
        assert [d for d, _, _ in seen] == [b"datagram 0", b"datagram 1", b"datagram 2"]
        arrived = [at for _, at, _ in seen]
        assert arrived[2] - arrived[0] > 0.25  # their own times, not the reading time
        assert all(read - at > 0.1 for _, at, read in seen[:2])
        assert abs(counter.clock() - time.time()) < 0.05  # outside a read: the wall clock
        sender.sendto(b"later", address)  # and the loop reads by itself as before
        assert await wait_for(lambda: len(seen) == 4, 2)
    finally:
        sender.close()
        transport.close()


def test_answer_sections_are_parsed() -> None:
    sdp = ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=mid:0\r\na=rtpmap:97 VP8/90000\r\n"
           "a=rtpmap:98 rtx/90000\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
           "a=ssrc:1234 cname:x\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n"
           "a=rtpmap:111 opus/48000/2\r\na=ssrc:99 cname:x\r\n")
    video, audio = parse_sections(sdp)
    assert (video.mid, video.kind, video.codecs, video.ssrcs) == ("0", "video", {97: "VP8", 98: "RTX"}, {1234})
    assert video.extensions == {"urn:ietf:params:rtp-hdrext:sdes:mid": 1}
    assert (audio.mid, audio.kind, audio.codecs[111]) == ("1", "audio", "OPUS")
    counter = RtpCounter()
    counter.learn(sdp)
    counter.count(b"\x80\x61\x00\x01" + b"\x00\x00\x00\x01" + (1234).to_bytes(4, "big") + b"\x10\x00\x9d")
    counter.count(b"\x80\x61\x00\x03" + b"\x00\x00\x00\x02" + (1234).to_bytes(4, "big") + b"\x10\x00\x9d")
    counter.count(b"\x80")
    assert counter.totals("video") == {"packets": 2, "bytes": 30, "frames": 2, "keyframes": 2,
                                       "lost": 1, "expected": 3, "retransmissions": 0}
    assert counter.malformed == 1


# --- end to end through the server's SFU ----------------------------------------------------------

async def test_publisher_agent_reaches_a_counting_agent_through_the_server(
        scene: Scene, running: list[Running]) -> None:
    from meetings.calendar import MeetingPatch

    await scene.services.calendar.update(scene.meeting_id, MeetingPatch(host_point_code="D1"))
    pub = start(running, options(scene, scene.d1_device, meeting_id=scene.meeting_id, video="testsrc",
                                 audio="tone", video_size=(160, 90), fps=15, main_slots=0, audio_slots=0,
                                 renditions=True))
    await until(lambda: bool(pub.events("media_connected") or pub.events("media_refused")), timeout=20)
    if pub.events("media_refused") and pub.events("media_refused")[0]["code"] == "unknown_type":
        pytest.skip("the server has no media.offer yet (server/media_service.py not wired)")
    sub = start(running, options(scene, scene.d2_device, meeting_id=scene.meeting_id, receive_only=True,
                                 main_slots=1, audio_slots=1))
    counter = sub.agent.counter
    await until(lambda: bool(sub.events("media_connected")), timeout=20)
    main_mid = next(t["mid"] for t in sub.events("media_connected")[0]["tracks"] if t["role"] == "main")
    await until(lambda: counter.by_mid().get(main_mid, {}).get("frames", 0) >= 20, timeout=20)
    main = counter.by_mid()[main_mid]
    assert main["keyframes"] >= 1 and main["lost"] == 0
    await until(lambda: counter.totals("audio")["frames"] >= 20, timeout=10)
    roles = [t["role"] for t in pub.events("media_connected")[0]["tracks"]]
    assert roles == ["camera", "camera-low", "camera-thumb", "mic"]
    slots = {s["mid"]: s for e in sub.events("slots") for s in e["slots"]}
    assert slots[main_mid]["point_code"] == "D1" and slots[main_mid]["rendition"] == "camera"
    assert sub.agent.link is not None
    assert not any(decoder_running(t.receiver) for t in sub.agent.link.pc.getTransceivers())
    assert await sub.stop() is ExitCode.OK
    assert await pub.stop() is ExitCode.OK
    assert sub.events("summary")[0]["video"]["frames"] >= 20
