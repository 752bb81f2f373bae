"""Real aiortc clients over 127.0.0.1 for the media tests: a publisher with a synthetic
camera (VP8/H264 at 320x240) and microphone (Opus), and subscribers that decode and count
frames. Nothing of media/ is faked; loss is injected on the client side of one hop."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from media import Room

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000


class SyntheticCamera(MediaStreamTrack):
    """A moving test pattern at a fixed frame rate (frames made once, then cycled)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self._fps = fps
        self._frames: list[av.VideoFrame] = []
        for i in range(8):
            img = np.zeros((height, width, 3), np.uint8)
            img[:, :, 1] = 60
            x = (i * width) // 8
            img[:, x:x + width // 8, :] = (220, 40, 40)
            img[(i * height) // 8:(i * height) // 8 + 8, :, 2] = 255
            self._frames.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format="yuv420p"))
        self._start: float | None = None
        self._count = 0
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self._fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = self._frames[self._count % len(self._frames)]
        frame.pts = self._count * (VIDEO_CLOCK // self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        self.sent += 1
        return frame


class SyntheticMicrophone(MediaStreamTrack):
    """A quiet 440 Hz tone in 20 ms frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        samples = 960
        t = np.arange(samples) / AUDIO_RATE
        tone = (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16)
        self._data = tone.reshape(1, -1)
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count * 0.02
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.AudioFrame.from_ndarray(self._data, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._count * 960
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._count += 1
        return frame


class DecodeErrorCounter(logging.Handler):
    """Counts aiortc's "failed to decode" warnings (one decoder per receiving track)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "failed to decode" in record.getMessage():
            self.count += 1


@dataclass
class TrackCounter:
    kind: str
    mid: str
    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    sizes: set[tuple[int, int]] = field(default_factory=set)


class Client:
    """One in-process aiortc participant talking to the room's server-side peer."""

    def __init__(self, room: Room, participant_id: str) -> None:
        self.room = room
        self.participant_id = participant_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.counters: dict[str, TrackCounter] = {}
        self.camera: SyntheticCamera | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._original_send: Callable[[bytes], Any] | None = None

    async def connect(self, *, video: bool = False, audio: bool = False, recv_video: int = 0,
                      recv_audio: int = 0, video_codec: str | None = None, fps: int = 15,
                      trickle: bool = False, size: tuple[int, int] = (320, 240)) -> str:
        """Offer, get the server's answer, apply it. Returns the answer SDP."""
        if video:
            self.camera = SyntheticCamera(size[0], size[1], fps=fps)
            t = self.pc.addTransceiver(self.camera, direction="sendonly")
            if video_codec:
                caps = RTCRtpSender.getCapabilities("video").codecs
                t.setCodecPreferences([c for c in caps if c.name in (video_codec, "rtx")])
        if audio:
            self.pc.addTransceiver(SyntheticMicrophone(), direction="sendonly")
        for _ in range(recv_video):
            self.pc.addTransceiver("video", direction="recvonly")
        for _ in range(recv_audio):
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        peer = self.room.create_peer(self.participant_id)
        offer = self.pc.localDescription.sdp
        candidates = [x for x in offer.splitlines() if x.startswith("a=candidate:")]
        if trickle:  # send the candidates separately, as browsers do
            offer = "\r\n".join(x for x in offer.splitlines() if x not in candidates
                                 and x != "a=end-of-candidates") + "\r\n"
        answer = await peer.accept_offer(offer)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if trickle:
            for line in candidates:
                await peer.add_ice_candidate(line, "0")
            await peer.add_ice_candidate(None)
        self._start_readers()
        return answer

    async def renegotiate(self, *, recv_video: int = 0, recv_audio: int = 0) -> str:
        """Offer again with more receive slots."""
        for _ in range(recv_video):
            self.pc.addTransceiver("video", direction="recvonly")
        for _ in range(recv_audio):
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await self.room.peer(self.participant_id).accept_offer(
            self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self._start_readers()
        return answer

    def _start_readers(self) -> None:
        for t in self.pc.getTransceivers():
            if (t.currentDirection in ("recvonly", "sendrecv") and t.receiver.track is not None
                    and str(t.mid) not in self.counters):
                counter = TrackCounter(t.kind, str(t.mid))
                self.counters[str(t.mid)] = counter
                self._tasks.append(asyncio.create_task(self._read(t.receiver.track, counter)))

    async def wait_connected(self, timeout: float = 10.0) -> None:
        peer = self.room.peer(self.participant_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.pc.connectionState == "connected" and peer.connection_state == "connected"
                    and all(s.ready for s in peer.sinks.values())):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.participant_id} did not connect "
                           f"({self.pc.connectionState}/{peer.connection_state})")

    async def _read(self, track: MediaStreamTrack, counter: TrackCounter) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                counter.frames += 1
                counter.last_at = now
                if counter.first_at is None:
                    counter.first_at = now
                if isinstance(frame, av.VideoFrame):
                    counter.sizes.add((frame.width, frame.height))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def video(self) -> TrackCounter:
        return next(c for c in self.counters.values() if c.kind == "video")

    def audio(self) -> TrackCounter:
        return next(c for c in self.counters.values() if c.kind == "audio")

    def dtls(self) -> Any:
        return self.pc.getTransceivers()[0].receiver.transport

    def drop_incoming_rtp(self, drop: Callable[[int], bool]) -> None:
        """Lose incoming RTP packets on this client's hop: ``drop(n)`` for the n-th packet
        (after SRTP, so the replay window is unaffected, as on a lossy network)."""
        dtls = self.dtls()
        original = type(dtls)._handle_rtp_data.__get__(dtls)
        counter = {"n": 0}

        async def handle(data: bytes, arrival_time_ms: int) -> None:
            counter["n"] += 1
            if not drop(counter["n"]):
                await original(data, arrival_time_ms)

        dtls._handle_rtp_data = handle

    def drop_outgoing_rtp(self, drop: Callable[[int], bool]) -> None:
        """Lose outgoing SRTP packets (not RTCP, not DTLS) on this client's hop."""
        ice = self.dtls().transport
        original = ice._send
        counter = {"n": 0}

        async def send(data: bytes) -> None:
            if 128 <= data[0] < 192 and not 192 <= data[1] <= 223:  # SRTP, not SRTCP
                counter["n"] += 1
                if drop(counter["n"]):
                    return
            await original(data)

        ice._send = send
        self._original_send = original

    def restore_outgoing_rtp(self) -> None:
        self.dtls().transport._send = self._original_send

    def restore_incoming_rtp(self) -> None:
        self.dtls().__dict__.pop("_handle_rtp_data", None)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.pc.close()


async def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
