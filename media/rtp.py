"""Raw RTP helpers for the forwarding path: parse a header without building objects, read
and write header extensions, sequence-number arithmetic (RFC 3550, RFC 8285)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_HEADER = struct.Struct("!BBHLL")
ONE_BYTE_PROFILE = 0xBEDE
URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


@dataclass(frozen=True, slots=True)
class RtpView:
    """Offsets into one plain (decrypted) RTP packet."""

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    ext_profile: int
    "Header extension profile (0 when the packet has none)."
    ext_start: int
    ext_end: int
    payload_start: int
    payload_end: int
    "Excludes padding."


def parse_rtp(data: bytes) -> RtpView | None:
    """Parse the fixed header and locate extensions and payload; None if malformed."""
    size = len(data)
    if size < 12:
        return None
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data, 0)
    if b0 >> 6 != 2:
        return None
    pos = 12 + 4 * (b0 & 0x0F)
    ext_profile = ext_start = ext_end = 0
    if b0 & 0x10:
        if size < pos + 4:
            return None
        ext_profile, words = struct.unpack_from("!HH", data, pos)
        ext_start = pos + 4
        ext_end = ext_start + 4 * words
        pos = ext_end
    end = size
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or pad > size - pos:
            return None
        end -= pad
    if pos > end:
        return None
    return RtpView(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, ext_profile, ext_start, ext_end,
                   pos, end)


def find_extension(data: bytes, view: RtpView, ext_id: int | None) -> bytes | None:
    """The value of header extension ``ext_id`` (one- or two-byte form), or None."""
    if not ext_id or not view.ext_profile:
        return None
    pos, end = view.ext_start, view.ext_end
    if view.ext_profile == ONE_BYTE_PROFILE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            xid, length = b >> 4, (b & 0x0F) + 1
            if xid == 15:
                return None
            if xid == ext_id:
                value = data[pos + 1:pos + 1 + length]
                return value if len(value) == length else None
            pos += 1 + length
    elif view.ext_profile & 0xFFF0 == 0x1000:
        while pos + 1 < end:
            xid, length = data[pos], data[pos + 1]
            if xid == 0:
                pos += 1
                continue
            if xid == ext_id:
                value = data[pos + 2:pos + 2 + length]
                return value if len(value) == length else None
            pos += 2 + length
    return None


def one_byte_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """Serialise elements (id 1..14, value 1..16 bytes) as an RFC 8285 one-byte block,
    including the 4-byte profile/length word; empty bytes if there are no elements."""
    if not elements:
        return b""
    body = b"".join(bytes([(xid << 4) | (len(value) - 1)]) + value for xid, value in elements)
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + body


def seq_newer(a: int, b: int) -> bool:
    """True if 16-bit sequence number ``a`` comes after ``b``."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def ts_diff(a: int, b: int) -> int:
    """Signed difference ``a - b`` of two 32-bit RTP timestamps."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x1_0000_0000 if d >= 0x8000_0000 else d
