"""What a sink writes to and what was negotiated for it: the seam between the forwarder and
a transport (a subscriber's aiortc peer today; a worker or cascade link later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media.codecs import CodecSpec


class StreamOutput(Protocol):
    """Where a sink's packets go (a subscriber's aiortc transport, later another link)."""

    def write_rtp(self, data: bytes) -> bool:
        """Send one plain RTP packet; False if dropped (congestion). ConnectionError when
        the output is gone for good."""

    def report(self, ntp_time: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        """Latest counters for RTCP sender reports."""


@dataclass(frozen=True)
class StreamParams:
    """What was negotiated for one outgoing stream (m-line) of a subscriber."""

    kind: str
    ssrc: int
    codecs: tuple[tuple[CodecSpec, int], ...]
    "Negotiated media codecs and their payload types, in the answer's order."
    rtx: tuple[tuple[int, int], ...] = ()
    "(media payload type, RTX payload type) pairs negotiated."
    rtx_ssrc: int | None = None
    mid: str | None = None
    mid_ext_id: int | None = None
    abs_send_time_ext_id: int | None = None
    audio_level_ext_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise ValueError(f"bad kind {self.kind!r}")
        if not self.codecs:
            raise ValueError("no codec negotiated")

    def payload_type_for(self, codec: CodecSpec) -> int | None:
        for spec, pt in self.codecs:
            if spec.can_carry(codec):
                return pt
        return None
