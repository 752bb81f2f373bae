"""Checks an untrusted SDP offer before aiortc sees it: sizes, counts and codecs, so that a
hostile or broken client gets a clear MediaError instead of tying up the server."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.config import SUPPORTED_CODECS, MediaConfig
from media.errors import MediaError

MEDIA_KINDS = ("audio", "video", "application")
MAX_SSRC_LINES_PER_M_LINE = 16


@dataclass
class _Section:
    kind: str
    port: int
    codecs: set[str] = field(default_factory=set)
    fingerprint: bool = False


def _printable(line: str) -> bool:
    return all(32 <= ord(c) < 127 or c == "\t" for c in line)


def validate_offer(sdp: object, config: MediaConfig) -> None:
    """Raise MediaError unless ``sdp`` is a plausible WebRTC offer diemcau can serve."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise MediaError("invalid_sdp", "the offer is empty or not text")
    if len(sdp) > config.max_sdp_bytes or len(sdp.encode("utf-8", "replace")) > config.max_sdp_bytes:
        raise MediaError("sdp_too_large", f"the offer exceeds {config.max_sdp_bytes} bytes")
    if sdp.count("\nm=") > config.max_m_lines:
        raise MediaError("too_many_m_lines", f"more than {config.max_m_lines} media sections")
    lines = sdp.splitlines()
    if not lines or lines[0].strip() != "v=0":
        raise MediaError("invalid_sdp", "the offer does not start with v=0")
    sections: list[_Section] = []
    session_fingerprint = False
    candidates = 0
    ssrc_lines = 0
    for line in lines:
        if not line:
            continue
        if line.startswith("a=candidate:"):
            if len(line) > config.max_candidate_length:
                raise MediaError("candidate_too_long",
                                 f"a candidate line exceeds {config.max_candidate_length} chars")
            candidates += 1
            if candidates > config.max_candidates:
                raise MediaError("too_many_candidates",
                                 f"more than {config.max_candidates} ICE candidates")
        elif len(line) > config.max_line_length:
            raise MediaError("invalid_sdp", f"an SDP line exceeds {config.max_line_length} chars")
        if len(line) < 2 or line[1] != "=" or not _printable(line):
            raise MediaError("invalid_sdp", "malformed SDP line")
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 3 or parts[0] not in MEDIA_KINDS or not parts[1].isdigit():
                raise MediaError("invalid_sdp", f"unsupported media section {line[:60]!r}")
            if len(sections) >= config.max_m_lines:
                raise MediaError("too_many_m_lines",
                                 f"more than {config.max_m_lines} media sections")
            sections.append(_Section(parts[0], int(parts[1])))
            ssrc_lines = 0
        elif line.startswith("a=fingerprint:"):
            if sections:
                sections[-1].fingerprint = True
            else:
                session_fingerprint = True
        elif line.startswith("a=rtpmap:") and sections:
            _, _, rest = line.partition(" ")
            sections[-1].codecs.add(rest.split("/", 1)[0].strip().upper())
        elif line.startswith("a=ssrc:"):
            ssrc_lines += 1
            if ssrc_lines > MAX_SSRC_LINES_PER_M_LINE:
                raise MediaError("invalid_sdp", "too many a=ssrc lines in one media section")
    rtp_sections = [s for s in sections if s.kind in ("audio", "video")]
    if not rtp_sections:
        raise MediaError("no_media", "the offer has no audio or video section")
    if sum(1 for s in sections if s.kind == "application") > 1:
        raise MediaError("invalid_sdp", "more than one data channel section")
    allowed = {"audio": set(SUPPORTED_CODECS["audio"]),
               "video": {c.upper() for c in config.video_codecs}}
    for s in sections:
        if not (s.fingerprint or session_fingerprint):
            raise MediaError("invalid_sdp", "a media section has no DTLS fingerprint")
        if s.kind in allowed and not s.codecs & allowed[s.kind]:
            raise MediaError("unsupported_codec",
                             f"no supported {s.kind} codec offered (need one of "
                             f"{', '.join(sorted(allowed[s.kind]))})")
