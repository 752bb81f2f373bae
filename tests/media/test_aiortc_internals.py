"""Fails loudly when aiortc's internals that media/ hooks change shape (see
media/aiortc_hooks.py and docs/media.md, "What is hooked in aiortc")."""

from __future__ import annotations

import importlib.metadata

import aiortc

from media.aiortc_hooks import check_aiortc_internals
from media.rtp import parse_rtp


async def test_pinned_aiortc_version() -> None:
    assert aiortc.__version__.startswith("1.16."), (
        "media/ hooks aiortc 1.16 internals: re-verify media/aiortc_hooks.py before upgrading")
    assert importlib.metadata.version("aioice").startswith("0.13.")


async def test_hooked_internals_exist() -> None:
    problems = check_aiortc_internals()
    assert problems == [], "aiortc internals changed:\n" + "\n".join(problems)


async def test_raw_rtp_parser_agrees_with_aiortc() -> None:
    """The forwarder's header parser and aiortc's serializer agree (extensions, padding)."""
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from media.rtp import find_extension

    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    ]))
    packet = RtpPacket(payload_type=111, marker=1, sequence_number=65535, timestamp=123456,
                       ssrc=0xDEADBEEF, payload=b"opus-bytes")
    packet.extensions.mid = "7"
    packet.extensions.audio_level = (True, 42)
    packet.padding_size = 4
    data = packet.serialize(ext_map)
    view = parse_rtp(data)
    assert view is not None
    assert (view.payload_type, view.marker, view.sequence_number, view.timestamp, view.ssrc) == (
        111, True, 65535, 123456, 0xDEADBEEF)
    assert data[view.payload_start:view.payload_end] == b"opus-bytes"
    assert find_extension(data, view, 1) == b"7"
    assert find_extension(data, view, 2) == bytes([0x80 | 42])
    assert find_extension(data, view, 3) is None
    assert parse_rtp(b"\x80" * 5) is None
