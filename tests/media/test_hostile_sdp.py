"""Malformed or hostile offers are refused with MediaError before aiortc works on them, and
the server peer can still be closed cleanly afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

from media import MediaError, Room
from tests.media.harness import SyntheticCamera, SyntheticMicrophone


@pytest.fixture
async def offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    pc.addTransceiver(SyntheticCamera(), direction="sendonly")
    pc.addTransceiver(SyntheticMicrophone(), direction="sendonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def only_unknown_codecs(sdp: str) -> str:
    sdp = re.sub(r"(a=rtpmap:\d+ )VP8/", r"\1AV1X/", sdp)
    sdp = re.sub(r"(a=rtpmap:\d+ )H264/", r"\1H265X/", sdp)
    return sdp


def thousands_of_m_lines(sdp: str) -> str:
    head, _, body = sdp.partition("m=")
    section = "m=" + body.split("m=")[0]
    return head + section * 3000


def hundreds_of_small_m_lines(sdp: str) -> str:
    return sdp + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n" * 300


def huge_candidate(sdp: str) -> str:
    return sdp.replace("a=candidate:", "a=candidate:" + "9" * 5000, 1)


def many_candidates(sdp: str) -> str:
    line = next(x for x in sdp.splitlines() if x.startswith("a=candidate:"))
    return sdp.replace(line, "\r\n".join([line] * 200), 1)


def no_media(sdp: str) -> str:
    return sdp.partition("m=")[0]


def no_fingerprint(sdp: str) -> str:
    return "\r\n".join(x for x in sdp.splitlines() if not x.startswith("a=fingerprint"))


def no_ice_credentials(sdp: str) -> str:
    return "\r\n".join(x for x in sdp.splitlines() if not x.startswith("a=ice-pwd"))


def bad_port(sdp: str) -> str:
    return re.sub(r"m=video \d+", "m=video nine", sdp, count=1)


CASES: list[tuple[str, Callable[[str], object], str]] = [
    ("empty", lambda s: "", "invalid_sdp"),
    ("not text", lambda s: 42, "invalid_sdp"),
    ("garbage", lambda s: "hello\r\nworld", "invalid_sdp"),
    ("binary", lambda s: s.replace("s=-", "s=\x00\x01\x02"), "invalid_sdp"),
    ("no media", no_media, "no_media"),
    ("unknown codecs only", only_unknown_codecs, "unsupported_codec"),
    ("thousands of m-lines", thousands_of_m_lines, "sdp_too_large"),
    ("hundreds of small m-lines", hundreds_of_small_m_lines, "too_many_m_lines"),
    ("huge candidate", huge_candidate, "candidate_too_long"),
    ("many candidates", many_candidates, "too_many_candidates"),
    ("too large", lambda s: s + "a=x:" + "y" * 900 + "\r\n" * 1 + ("a=z:1\r\n" * 20000),
     "sdp_too_large"),
    ("huge line", lambda s: s + "a=tool:" + "x" * 5000 + "\r\n", "invalid_sdp"),
    ("no fingerprint", no_fingerprint, "invalid_sdp"),
    ("no ICE password", no_ice_credentials, "invalid_sdp"),
    ("bad port", bad_port, "invalid_sdp"),
]


@pytest.mark.parametrize("name,mutate,code", CASES, ids=[c[0] for c in CASES])
async def test_hostile_offer_is_refused(room: Room, offer: str, name: str,
                                        mutate: Callable[[str], object], code: str) -> None:
    peer = room.create_peer("hostile")
    with pytest.raises(MediaError) as err:
        await peer.accept_offer(mutate(offer))  # type: ignore[arg-type]
    assert err.value.code == code, err.value
    await room.remove_peer("hostile")
    await peer.close()  # twice is fine
    assert room.peers == {} and room.sources == {}


async def test_renegotiation_rules_and_closed_peer(room: Room, offer: str) -> None:
    peer = room.create_peer("p")
    answer = await peer.accept_offer(offer)
    assert "a=group:BUNDLE" in answer and "VP8" in answer and "opus" in answer
    assert "G722" not in answer and "PCMU" not in answer
    assert [s.mid for s in peer.slots()] == ["2"] and sorted(peer.sources) == ["0", "1"]
    # an existing m-line may not change direction (nor disappear)
    flipped = offer.replace("a=recvonly", "a=inactive")
    with pytest.raises(MediaError) as err:
        await peer.accept_offer(flipped)
    assert err.value.code == "invalid_state"
    with pytest.raises(MediaError) as err:
        await peer.accept_offer(offer.partition("m=audio")[0])
    assert err.value.code == "invalid_sdp"
    # the same offer again is a no-op renegotiation
    await peer.accept_offer(offer)
    assert [s.mid for s in peer.slots()] == ["2"] and sorted(peer.sources) == ["0", "1"]
    for bad, code in [("candidate:x", "invalid_candidate"), ("candidate:" + "1" * 999,
                                                             "candidate_too_long")]:
        with pytest.raises(MediaError) as err:
            await peer.add_ice_candidate(bad, "0")
        assert err.value.code == code
    with pytest.raises(MediaError) as err:
        room.create_peer("p")
    assert err.value.code == "duplicate_participant"
    await peer.close()
    await peer.close()
    with pytest.raises(MediaError) as err:
        await peer.accept_offer(offer)
    assert err.value.code == "peer_closed"
