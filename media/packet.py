"""The unit the forwarder moves: one media packet of a source, codec facts already parsed
once so that N sinks don't parse it N times."""

from __future__ import annotations

from dataclasses import dataclass

from media.codecs import CodecSpec, Vp8Info, h264_keyframe_start, vp8_info


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One RTP packet of a source, in the source's own sequence/timestamp space.

    Feeders other than a local peer (a worker process, an upstream node) build these with
    :func:`make_packet` and hand them to :meth:`media.source.Source.push`.
    """

    sequence_number: int
    "16-bit sequence number as sent by the publisher (after RTX unwrapping)."
    timestamp: int
    "32-bit RTP timestamp as sent by the publisher."
    marker: bool
    payload: bytes
    "Codec payload (RTP header, extensions and padding removed)."
    keyframe: bool
    "A decoder may start at this packet (VP8/H264 keyframe start; always true for audio)."
    vp8: Vp8Info | None = None
    "VP8 descriptor facts (picture id position) for rewriting."
    audio_level: int | None = None
    "RFC 6464 audio level byte (V flag << 7 | -dBov), audio only."


def make_packet(codec: CodecSpec, sequence_number: int, timestamp: int, marker: bool,
                payload: bytes, audio_level: int | None = None) -> MediaPacket:
    """Build a :class:`MediaPacket`, detecting keyframes for the codec."""
    if codec.name == "VP8":
        info = vp8_info(payload)
        return MediaPacket(sequence_number, timestamp, marker, payload, info.keyframe_start,
                           info)
    if codec.name == "H264":
        return MediaPacket(sequence_number, timestamp, marker, payload,
                           h264_keyframe_start(payload))
    return MediaPacket(sequence_number, timestamp, marker, payload, True, None, audio_level)
