"""Reading untrusted JSON fields for the protocol, and the errors a refusal carries.

Every check raises :class:`ProtocolError` with a code from :data:`ERROR_CODES` and, when the
message had one, its correlation id (``re``). Strings are checked to be encodable as UTF-8
(JSON may smuggle in lone surrogates), so whatever is accepted can be stored and echoed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ID_CHARS = 64
MAX_SAFE_INT = 2**53 - 1  # what a JavaScript number holds exactly

MessageId = str | int

ERROR_CODES: dict[str, str] = {
    "malformed_json": "the frame is not UTF-8 JSON, or not a JSON object",
    "unknown_type": "the message type is not part of this protocol version",
    "missing_field": "a required field is absent",
    "invalid_field": "a field has the wrong type or an out-of-range value",
    "too_large": "the frame is larger than max_message_bytes",
    "not_authenticated": "send hello (with a token, or with the session cookie) first",
    "already_authenticated": "hello was already accepted on this connection",
    "bad_version": "the protocol version in hello is not supported",
    "invalid_token": "the token or cookie is unknown, forged or revoked",
    "token_expired": "the token has expired; log in again or ask for a new link",
    "account_disabled": "the user account is disabled",
    "point_disabled": "the bridge point is disabled",
    "resume_expired": "the resume token is unknown or its window has passed",
    "session_ended": "the session was ended: its credential expired, was revoked or disabled, or "
                     "its point was removed from the meeting (details: reason, code)",
    "forbidden": "the permission table does not allow this",
    "not_found": "no such meeting",
    "meeting_closed": "the meeting is closed",
    "meeting_full": "the meeting has reached max_participants_per_meeting (details: cap)",
    "node_full": "this server node has reached max_connections_per_node (details: cap)",
    "not_joined": "join a meeting first",
    "text_empty": "the chat text is empty after cleaning",
    "text_too_long": "the chat text is longer than chat_max_chars",
    "rate_limited": "more than messages_per_second; the message was dropped",
    "invalid": "the request was refused as invalid (see message)",
    "conflict": "the request conflicts with the meeting's current state (see message)",
    "internal": "the server failed; the connection stays usable",
    # media.* (docs/media.md): the WebSocket session stays up after any of these
    "invalid_sdp": "the SDP offer is malformed, hostile, or breaks the renegotiation rules",
    "unsupported_codec": "no codec the server forwards (Opus, VP8, H264) was offered",
    "invalid_candidate": "the ICE candidate is malformed, too long, or one too many",
}


class ProtocolError(Exception):
    """An untrusted frame was refused; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, *, re: MessageId | None = None,
                 details: dict[str, Any] | None = None) -> None:
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.re = re
        self.details = details


def invalid(name: str, what: str, re: MessageId | None) -> ProtocolError:
    return ProtocolError("invalid_field", f"{name}: expected {what}", re=re,
                         details={"field": name})


def utf8(value: str, name: str, re: MessageId | None) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(name, "valid Unicode (no lone surrogates)", re) from None
    return value


def _present(data: Mapping[str, Any], name: str, re: MessageId | None, required: bool) -> bool:
    if data.get(name) is not None:
        return True
    if required:
        raise ProtocolError("missing_field", f"{name} is required", re=re, details={"field": name})
    return False


def get_int(data: Mapping[str, Any], name: str, re: MessageId | None, *, required: bool,
            minimum: int = 0) -> int | None:
    """An integer field (not a bool, not a float), ``minimum`` ≤ value ≤ 2^53−1."""
    if not _present(data, name, re, required):
        return None
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not (
            minimum <= value <= MAX_SAFE_INT):
        raise invalid(name, f"an integer >= {minimum}", re)
    return value


def get_str(data: Mapping[str, Any], name: str, re: MessageId | None, *, required: bool,
            max_chars: int | None = None) -> str | None:
    """A string field, at most ``max_chars`` characters."""
    if not _present(data, name, re, required):
        return None
    value = data[name]
    if not isinstance(value, str):
        raise invalid(name, "a string", re)
    if max_chars is not None and len(value) > max_chars:
        raise invalid(name, f"at most {max_chars} characters", re)
    return utf8(value, name, re)


def message_id(data: Mapping[str, Any]) -> MessageId | None:
    """The correlation ``id``: a short string or a safe integer (errors carry no ``re``)."""
    value = data.get("id")
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS:
        return utf8(value, "id", None)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SAFE_INT:
        return value
    raise invalid("id", f"a string of at most {MAX_ID_CHARS} characters or a safe integer", None)
