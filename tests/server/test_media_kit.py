"""Helpers for the media signalling tests (this module holds no tests itself).

A :class:`MediaPeer` is a real participant: a WebSocket session of the real app (hello, join)
plus a real aiortc peer connection on 127.0.0.1 that negotiates through ``media.offer`` and
decodes what the server forwards. Cameras are tiny synthetic test patterns (CPU is shared).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiohttp import WSMsgType
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from meetings.calendar import InviteSelection
from server.config import Config
from tests.conftest import make_config
from tests.media.harness import SyntheticCamera, SyntheticMicrophone, TrackCounter
from tests.server.test_ws_kit import Scene, WsPeer

TIMEOUT = 10.0
Message = dict[str, Any]


def media_config(tmp_path: Any, **extra: Any) -> Config:
    """Loopback-only ICE (process-wide), fast stats."""
    return make_config(tmp_path, **{"media.host_addresses": "127.0.0.1",
                                    "media.stats_interval_s": 1.0, **extra})


class SilentMicrophone(SyntheticMicrophone):
    """A microphone that sends digital silence (audio level 127)."""

    def __init__(self) -> None:
        super().__init__()
        self._data = np.zeros_like(self._data)


class Inbox:
    """Reads every message of a WebSocket in the background so tests can wait for any."""

    def __init__(self, ws: WsPeer) -> None:
        self.ws = ws
        self.messages: list[Message] = []
        self._event = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.ws.ws.receive()
            if msg.type is not WSMsgType.TEXT:
                break
            self.messages.append(json.loads(msg.data))
            self._event.set()
        self._event.set()

    def mark(self) -> int:
        return len(self.messages)

    async def wait(self, pred: Callable[[Message], bool], timeout: float = TIMEOUT,
                   since: int = 0) -> Message:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        checked = since
        while True:
            for msg in self.messages[checked:]:
                if pred(msg):
                    return msg
            checked = max(checked, len(self.messages))
            left = deadline - loop.time()
            if left <= 0 or self._task.done():
                types = [m.get("type") for m in self.messages[since:]][-20:]
                raise AssertionError(f"{self.ws.name}: message not seen; got types {types}")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), left)
            except TimeoutError:
                pass

    async def next(self, type_: str, timeout: float = TIMEOUT, since: int = 0,
                   **match: Any) -> Message:
        return await self.wait(lambda m: m.get("type") == type_ and all(
            m.get(k) == v for k, v in match.items()), timeout, since)

    def of_type(self, type_: str) -> list[Message]:
        return [m for m in self.messages if m.get("type") == type_]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class MediaPeer:
    ws: WsPeer
    inbox: Inbox
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)))
    counters: dict[str, TrackCounter] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    cameras: list[SyntheticCamera] = field(default_factory=list)
    _ids: int = 100

    @classmethod
    async def join(cls, scene: Scene, token: str, name: str) -> MediaPeer:
        ws = await scene.peer(token, name)
        await ws.join(scene.meeting_id)
        return cls(ws, Inbox(ws))

    def add(self, *, cameras: tuple[tuple[str, int, int, int], ...] = (), mic: bool = False,
            silent: bool = False, main: int = 0, audio: int = 0, grid: int = 0) -> None:
        """Transceivers to offer: cameras as (role, width, height, fps)."""
        for role, w, h, fps in cameras:
            cam = SyntheticCamera(w, h, fps=fps)
            self.cameras.append(cam)
            self._pending(self.pc.addTransceiver(cam, direction="sendonly"), role)
        if mic:
            track = SilentMicrophone() if silent else SyntheticMicrophone()
            self._pending(self.pc.addTransceiver(track, direction="sendonly"), "mic")
        for kind, role, n in (("video", "main", main), ("audio", "audio", audio),
                              ("video", "grid", grid)):
            for _ in range(n):
                self._pending(self.pc.addTransceiver(kind, direction="recvonly"), role)

    def _pending(self, transceiver: Any, role: str) -> None:
        self.roles[f"t{id(transceiver)}"] = role

    async def make_offer(self) -> tuple[str, list[dict[str, str]]]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        tracks = []
        for t in self.pc.getTransceivers():
            role = self.roles.get(f"t{id(t)}")
            if role is not None:
                tracks.append({"mid": str(t.mid), "kind": t.kind, "role": role})
        return self.pc.localDescription.sdp, tracks

    async def offer(self, **add: Any) -> Message:
        """Offer (adding transceivers), apply the answer, start decoding; the answer."""
        self.add(**add)
        sdp, tracks = await self.make_offer()
        self._ids += 1
        since = self.inbox.mark()
        await self.ws.send("media.offer", sdp=sdp, tracks=tracks, id=self._ids)
        reply = await self.inbox.wait(lambda m: m.get("re") == self._ids, TIMEOUT, since)
        assert reply["type"] == "media.answer", reply
        await self.pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        for t in self.pc.getTransceivers():
            mid = str(t.mid)
            if t.currentDirection == "recvonly" and mid not in self.counters:
                counter = self.counters[mid] = TrackCounter(t.kind, mid)
                self.tasks.append(asyncio.create_task(self._read(t.receiver.track, counter)))
        return reply

    async def _read(self, track: Any, counter: TrackCounter) -> None:
        import time

        import av
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                counter.frames += 1
                counter.last_at = time.monotonic()
                if counter.first_at is None:
                    counter.first_at = counter.last_at
                if isinstance(frame, av.VideoFrame):
                    counter.sizes.add((frame.width, frame.height))
        except MediaStreamError:  # the track ended: the peer closed
            return

    def mids(self, role: str) -> list[str]:
        return [m for m, t in ((str(t.mid), t) for t in self.pc.getTransceivers())
                if self.roles.get(f"t{id(t)}") == role]

    def latest_slots(self) -> list[Message]:
        slots = self.inbox.of_type("media.slots")
        return slots[-1]["slots"] if slots else []

    def slot(self, mid: str) -> Message:
        return next(s for s in self.latest_slots() if s["mid"] == mid)

    async def slots_where(self, pred: Callable[[list[Message]], bool],
                          timeout: float = TIMEOUT) -> list[Message]:
        msg = await self.inbox.wait(lambda m: m.get("type") == "media.slots"
                                    and pred(m["slots"]), timeout)
        return list(msg["slots"])

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # aioice race: a check list completing right before close() lets connect() start its
        # consent task after the close (it polls every 20 ms); give it that turn first.
        await asyncio.sleep(0.05)
        await self.pc.close()
        await self.ws.close()
        await self.inbox.close()


async def add_point(scene: Scene, code: str, name: str) -> str:
    """A new district point invited to the scene's meeting; its device token."""
    reg = scene.services.registry
    point = await reg.create(code, name, "district", "P")
    await scene.services.calendar.invite(scene.meeting_id, InviteSelection(codes=(code,)))
    return (await reg.issue_token(point.id)).token


async def set_main(scene: Scene, code: str) -> Message:
    resp = await scene.api.client.post(f"/api/meetings/{scene.meeting_id}/main-screen",
                                       json={"point_code": code},
                                       headers=scene.api.bearer(scene.chair))
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def until_frames(peer: MediaPeer, mid: str, *, more_than: int = 0,
                       size: tuple[int, int] | None = None, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        c = peer.counters.get(mid)
        if c is not None and c.frames > more_than and (size is None or size in c.sizes):
            return
        if loop.time() > deadline:
            pytest.fail(f"{peer.ws.name}: slot {mid} decoded {c.frames if c else 0} frames "
                        f"(sizes {c.sizes if c else set()}), wanted > {more_than} of {size}")
        await asyncio.sleep(0.05)
