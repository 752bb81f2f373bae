"""The media part of the ``GET /ws`` protocol (``media.*``): WebRTC negotiation with the SFU
and what the server tells a participant about its slots, the main screen and link quality.

Kept beside :mod:`server.ws.protocol`, which registers these classes in its message tables
(``CLIENT_MESSAGES``/``SERVER_MESSAGES``); docs/protocol.md documents them with the rest.
The client always offers: see docs/media.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .fields import MessageId, ProtocolError, get_int, get_str, invalid

MAX_SDP_CHARS = 262144
"""Upper bound of the ``sdp`` string before the media layer's own ``max_sdp_bytes`` check."""
MAX_TRACKS = 64
MAX_MID_CHARS = 32
SEND_ROLES = frozenset({"camera", "camera-low", "camera-thumb", "mic", "screen"}) | {"camera-hd"}
RECV_ROLES = frozenset({"main", "audio", "grid"}) | {"content"}
MAX_PAGE = 10000


@dataclass(frozen=True)
class TrackRole:
    """What the client means by one m-line of its offer."""

    mid: str
    kind: str
    role: str


def _tracks(data: Mapping[str, Any], re: MessageId | None) -> tuple[TrackRole, ...]:
    raw = data.get("tracks", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_TRACKS:
        raise invalid("tracks", f"a list of at most {MAX_TRACKS} objects", re)
    tracks: list[TrackRole] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise invalid("tracks", "a list of {mid, kind, role} objects", re)
        mid = get_str(item, "mid", re, required=True, max_chars=MAX_MID_CHARS)
        kind = get_str(item, "kind", re, required=True, max_chars=8)
        role = get_str(item, "role", re, required=True, max_chars=16)
        assert mid is not None and kind is not None and role is not None
        if kind not in ("audio", "video"):
            raise invalid("kind", '"audio" or "video"', re)
        if role not in SEND_ROLES | RECV_ROLES:
            raise invalid("role", "one of " + ", ".join(sorted(SEND_ROLES | RECV_ROLES)), re)
        if mid in seen:
            raise invalid("mid", "unique within tracks", re)
        seen.add(mid)
        tracks.append(TrackRole(mid, kind, role))
    return tuple(tracks)


@dataclass(frozen=True)
class MediaOffer:
    """An SDP offer (first or renegotiation) with the role of each m-line."""

    type: ClassVar[str] = "media.offer"
    sdp: str
    tracks: tuple[TrackRole, ...] = ()
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> MediaOffer:
        sdp = get_str(data, "sdp", re, required=True, max_chars=MAX_SDP_CHARS)
        assert sdp is not None
        return cls(sdp=sdp, tracks=_tracks(data, re), id=re)


@dataclass(frozen=True)
class MediaCandidate:
    """A trickled ICE candidate (``candidate: null`` = end of candidates)."""

    type: ClassVar[str] = "media.candidate"
    candidate: str | None = None
    mid: str | None = None
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> MediaCandidate:
        return cls(candidate=get_str(data, "candidate", re, required=False, max_chars=1024),
                   mid=get_str(data, "mid", re, required=False, max_chars=MAX_MID_CHARS), id=re)


@dataclass(frozen=True)
class MediaGrid:
    """Which page of online points' thumbnails fills the caller's ``grid`` slots."""

    type: ClassVar[str] = "media.grid"
    page: int = 0
    page_size: int | None = None
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> MediaGrid:
        page = get_int(data, "page", re, required=False) or 0
        if page > MAX_PAGE:
            raise invalid("page", f"an integer <= {MAX_PAGE}", re)
        size = get_int(data, "page_size", re, required=False, minimum=1)
        if size is not None and size > MAX_PAGE:
            raise invalid("page_size", f"an integer <= {MAX_PAGE}", re)
        return cls(page=page, page_size=size, id=re)


@dataclass(frozen=True)
class MediaKeyframe:
    """Ask for a keyframe on one of the caller's slots."""

    type: ClassVar[str] = "media.keyframe"
    mid: str
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> MediaKeyframe:
        mid = get_str(data, "mid", re, required=True, max_chars=MAX_MID_CHARS)
        assert mid is not None
        return cls(mid=mid, id=re)


@dataclass(frozen=True)
class MediaLeave:
    """Stop media (the server closes the peer) but stay in the meeting."""

    type: ClassVar[str] = "media.leave"
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> MediaLeave:
        return cls(id=re)


MEDIA_CLIENT_MESSAGES = (MediaOffer, MediaCandidate, MediaGrid, MediaKeyframe, MediaLeave)


# ---------------------------------------------------------------- server → client


@dataclass(frozen=True)
class MediaAnswer:
    """The server's SDP answer (its ICE candidates gathered inside)."""

    type: ClassVar[str] = "media.answer"
    sdp: str


@dataclass(frozen=True)
class MediaSlots:
    """What each of the session's receive slots carries now."""

    type: ClassVar[str] = "media.slots"
    slots: list[dict[str, Any]]


@dataclass(frozen=True)
class MediaMain:
    """The main screen changed."""

    type: ClassVar[str] = "media.main"
    point_code: str | None
    label: str
    reason: str


@dataclass(frozen=True)
class MediaStats:
    """Link quality of every point, for the chair's console."""

    type: ClassVar[str] = "media.stats"
    points: list[dict[str, Any]]
    server: dict[str, Any] | None = None
    """This node's media load since the previous report (``NodeLoad.as_dict``)."""


@dataclass(frozen=True)
class MediaClosed:
    """The server closed the session's peer connection; the client may offer again."""

    type: ClassVar[str] = "media.closed"
    reason: str


MEDIA_SERVER_MESSAGES = (MediaAnswer, MediaSlots, MediaMain, MediaStats, MediaClosed)


def media_error(code: str, message: str, re: MessageId | None) -> ProtocolError:
    """A media core error (``media.errors.MediaError`` code) as a protocol error."""
    mapped = {
        "invalid_sdp": "invalid_sdp", "no_media": "invalid_sdp",
        "too_many_m_lines": "invalid_sdp", "invalid_state": "invalid_sdp",
        "sdp_too_large": "too_large",
        "unsupported_codec": "unsupported_codec", "codec_mismatch": "unsupported_codec",
        "too_many_candidates": "invalid_candidate", "candidate_too_long": "invalid_candidate",
        "invalid_candidate": "invalid_candidate",
    }.get(code, "invalid")
    return ProtocolError(mapped, message[:300], re=re, details={"media_code": code})
