"""Media settings: one frozen value object, validated on construction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from media.errors import MediaError

#: Codecs diemcau forwards without transcoding, by kind (upper-case names as in SDP).
SUPPORTED_CODECS: dict[str, tuple[str, ...]] = {"audio": ("OPUS",), "video": ("VP8", "H264")}


@dataclass(frozen=True)
class IceServer:
    """One STUN/TURN server (``urls`` like ``turn:turn.example.vn:3478``)."""

    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class MediaConfig:
    """Knobs of the media core. Defaults suit a province meeting on one node.

    ``ice_servers`` defaults to none: never fall back to a public STUN server.
    """

    ice_servers: tuple[IceServer, ...] = ()
    "STUN/TURN servers given to every server-side peer connection."
    video_codecs: tuple[str, ...] = ("VP8", "H264")
    "Video codecs accepted, in order of preference (subset of VP8, H264)."
    max_sdp_bytes: int = 65536
    "Largest SDP offer accepted."
    max_m_lines: int = 64
    "Most media sections (m-lines) in one offer."
    max_candidates: int = 32
    "Most ICE candidates in one offer (all m-lines together) or trickled per peer."
    max_candidate_length: int = 256
    "Longest ``a=candidate`` line."
    max_line_length: int = 1024
    "Longest SDP line of any other kind."
    keyframe_min_interval_s: float = 0.5
    "At most one keyframe request (PLI) to a publisher per this interval."
    keyframe_retry_s: float = 0.6
    "A sink still waiting for a keyframe asks again after this long."
    history_size: int = 1024
    "Packets kept per outgoing video stream for NACK retransmission (power of two)."
    retransmits_per_s: float = 300.0
    "Retransmission budget per outgoing stream (token bucket, burst = one second)."
    send_buffer_limit_bytes: int = 262144
    "Packets to a subscriber are dropped while its socket's write buffer holds more."
    host_addresses: tuple[str, ...] = ()
    "Local IP addresses ICE gathers host candidates on (empty: every interface but loopback);"
    " applied process-wide with :func:`media.aiortc_hooks.use_host_addresses`."

    def __post_init__(self) -> None:
        for name in self.video_codecs:
            if name.upper() not in SUPPORTED_CODECS["video"]:
                raise MediaError("invalid_config", f"unsupported video codec {name!r}")
        if not self.video_codecs:
            raise MediaError("invalid_config", "video_codecs is empty")
        size = self.history_size
        if size < 16 or size & (size - 1):
            raise MediaError("invalid_config", "history_size must be a power of two >= 16")
        if self.keyframe_min_interval_s <= 0 or self.keyframe_retry_s <= 0:
            raise MediaError("invalid_config", "keyframe intervals must be positive")
        for address in self.host_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise MediaError("invalid_config", f"not an IP address: {address!r}") from None
        for server in self.ice_servers:
            if not server.urls.startswith(("stun:", "turn:", "turns:")):
                raise MediaError("invalid_config", f"not a STUN/TURN URL: {server.urls!r}")
        for n in ("max_sdp_bytes", "max_m_lines", "max_candidates", "max_candidate_length",
                  "max_line_length", "send_buffer_limit_bytes"):
            if getattr(self, n) <= 0:
                raise MediaError("invalid_config", f"{n} must be positive")


