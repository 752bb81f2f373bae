"""What the forwarder must know about each codec: identity and compatibility, where a
decoder may start (keyframes), and the VP8 picture id it rewrites."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CodecSpec:
    """A negotiated codec, independent of payload type (which differs per peer)."""

    kind: str
    "``audio`` or ``video``."
    name: str
    "Upper-case codec name as in SDP: ``OPUS``, ``VP8``, ``H264``."
    clock_rate: int
    packetization_mode: str = ""
    "H264 only."
    profile: str = ""
    "H264 only: profile_idc + profile_iop (first 4 hex digits of profile-level-id)."

    @classmethod
    def from_aiortc(cls, codec: Any) -> CodecSpec:
        """From an ``aiortc.RTCRtpCodecParameters``."""
        kind, _, name = str(codec.mimeType).partition("/")
        name = name.upper()
        if name == "H264":
            params = codec.parameters or {}
            return cls(kind.lower(), name, int(codec.clockRate),
                       str(params.get("packetization-mode", "0")),
                       str(params.get("profile-level-id", "42e01f"))[:4].lower())
        return cls(kind.lower(), name, int(codec.clockRate))

    def can_carry(self, source: CodecSpec) -> bool:
        """True if a stream negotiated as ``self`` can carry packets of ``source`` as is."""
        return (self.kind, self.name, self.clock_rate, self.packetization_mode, self.profile) == (
            source.kind, source.name, source.clock_rate, source.packetization_mode,
            source.profile)

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}/{self.clock_rate}"


@dataclass(frozen=True, slots=True)
class Vp8Info:
    """What the VP8 payload descriptor (RFC 7741 §4.2) of one packet says."""

    keyframe_start: bool
    "First packet of a keyframe: S=1, PID=0 and the P bit of the frame header clear."
    picture_id: int | None
    picture_id_pos: int
    "Offset of the picture id in the payload (0 if absent)."
    picture_id_long: bool
    "15-bit (M=1) rather than 7-bit picture id."


_NO_VP8 = Vp8Info(False, None, 0, False)


def vp8_info(payload: bytes) -> Vp8Info:
    """Parse the VP8 payload descriptor; a malformed one reads as a plain delta packet."""
    size = len(payload)
    if size < 1:
        return _NO_VP8
    b0 = payload[0]
    pos = 1
    picture_id: int | None = None
    pid_pos = 0
    pid_long = False
    if b0 & 0x80:
        if size < 2:
            return _NO_VP8
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id
            if size <= pos:
                return _NO_VP8
            pid_pos = pos
            if payload[pos] & 0x80:
                if size < pos + 2:
                    return _NO_VP8
                picture_id = struct.unpack_from("!H", payload, pos)[0] & 0x7FFF
                pid_long = True
                pos += 2
            else:
                picture_id = payload[pos]
                pos += 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K
            pos += 1
    start = bool(b0 & 0x10) and (b0 & 0x0F) == 0
    keyframe = start and size > pos and not (payload[pos] & 0x01)
    return Vp8Info(keyframe, picture_id, pid_pos, pid_long)


def vp8_set_picture_id(payload: bytes, info: Vp8Info, picture_id: int) -> bytes:
    """A copy of ``payload`` with its picture id replaced (same width as the original)."""
    pos = info.picture_id_pos
    if info.picture_id is None or not pos:
        return payload
    if info.picture_id_long:
        field = struct.pack("!H", 0x8000 | (picture_id & 0x7FFF))
        return payload[:pos] + field + payload[pos + 2:]
    return payload[:pos] + bytes([picture_id & 0x7F]) + payload[pos + 1:]


def h264_keyframe_start(payload: bytes) -> bool:
    """True if the packet carries an SPS (single NAL unit or inside a STAP-A): decoding of
    an IDR picture can start here (RFC 6184; encoders send SPS/PPS ahead of each IDR)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal == 7:
        return True
    if nal == 24:  # STAP-A
        pos = 1
        while pos + 2 < len(payload):
            (length,) = struct.unpack_from("!H", payload, pos)
            if length and payload[pos + 2] & 0x1F == 7:
                return True
            pos += 2 + length
    return False
