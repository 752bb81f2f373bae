"""The one error type media/ raises for bad input or misuse (lỗi phương tiện)."""

from __future__ import annotations


class MediaError(Exception):
    """A refused media operation, with a stable ``code`` the signalling layer maps to a
    protocol error ``{type: "error", code, message}``.

    Codes: ``invalid_sdp``, ``sdp_too_large``, ``too_many_m_lines``, ``no_media``,
    ``unsupported_codec``, ``too_many_candidates``, ``candidate_too_long``,
    ``invalid_state``, ``invalid_candidate``, ``peer_closed``, ``unknown_participant``, ``unknown_source``,
    ``unknown_slot``, ``no_free_slot``, ``kind_mismatch``, ``codec_mismatch``,
    ``duplicate_participant``, ``duplicate_source``, ``invalid_config``, ``unsupported_aiortc``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
