"""Renditions: a subscriber whose link loses packets is moved to the lower rendition of the
main-screen camera at a keyframe, and back up when its link recovers; others stay on top."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from server.config import Config
from tests.conftest import Api
from tests.server.test_media_kit import MediaPeer, media_config, set_main, until_frames
from tests.server.test_ws_kit import build_scene

HIGH, LOW = (160, 120), (80, 60)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path)


def lose_incoming(peer: MediaPeer, ratio: float) -> None:
    """Drop a share of the RTP packets arriving at the client (after SRTP), as a bad link.
    Retransmissions (RTX) get through: aiortc's client NACKs a hole only once, so a lost
    repair would stall its jitter buffer for seconds (browsers ask again)."""
    transceiver = peer.pc.getTransceivers()[0]
    dtls = transceiver.receiver.transport
    rtx = {c.payloadType for c in transceiver._codecs if c.name == "rtx"}
    original = type(dtls)._handle_rtp_data.__get__(dtls)
    rng = random.Random(7)

    async def handle(data: bytes, arrival_time_ms: int) -> None:
        if data[1] & 0x7F in rtx or rng.random() >= ratio:
            await original(data, arrival_time_ms)

    dtls._handle_rtp_data = handle


def heal(peer: MediaPeer) -> None:
    peer.pc.getTransceivers()[0].receiver.transport.__dict__.pop("_handle_rtp_data", None)


def rendition(peer: MediaPeer) -> Any:
    return peer.slot(peer.mids("main")[0])["rendition"]


async def test_lossy_subscriber_gets_the_lower_rendition_then_recovers(api: Api) -> None:
    scene = await build_scene(api)
    await set_main(scene, "D1")
    publisher = await MediaPeer.join(scene, scene.d1_device, "D1")
    good = await MediaPeer.join(scene, scene.d2_device, "good")
    bad = await MediaPeer.join(scene, scene.d2_device, "bad")
    try:
        await publisher.offer(cameras=(("camera", *HIGH, 15), ("camera-low", *LOW, 15)))
        for s in (good, bad):
            await s.offer(main=1)
            await until_frames(s, s.mids("main")[0], more_than=3, size=HIGH, timeout=15)
            assert rendition(s) == "camera"
        lose_incoming(bad, 0.4)
        slots = await bad.slots_where(lambda sl: sl[0]["rendition"] == "camera-low", timeout=20)
        assert slots[0]["point_code"] == "D1"
        heal(bad)
        mark = bad.inbox.mark()
        # a decoder left in a bad state by the loss asks for a keyframe, as browsers do
        await bad.ws.send("media.keyframe", mid=bad.mids("main")[0])
        await until_frames(bad, bad.mids("main")[0], size=LOW, timeout=25)
        assert rendition(good) == "camera"
        # the link is fine again: back to the camera after a few good reports
        recovered = await bad.inbox.wait(lambda m: m.get("type") == "media.slots" and m[
            "slots"][0]["rendition"] == "camera", timeout=25, since=mark)
        assert recovered["slots"][0]["point_code"] == "D1"
        frames = bad.counters[bad.mids("main")[0]].frames
        await until_frames(bad, bad.mids("main")[0], more_than=frames + 3, timeout=15)
        await asyncio.sleep(0)
        assert all(s[0]["rendition"] == "camera" for s in
                   (m["slots"] for m in good.inbox.of_type("media.slots")))
    finally:
        await asyncio.gather(publisher.close(), good.close(), bad.close(),
                             return_exceptions=True)
