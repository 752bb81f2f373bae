"""The signalling protocol of ``GET /ws``: every message, both directions, in one place.

Frames are UTF-8 JSON objects with a ``type``. Client messages may carry an ``id`` (a string
or an integer) that the server echoes as ``re`` in the reply or error it causes. Relayed
meeting events (``presence``, ``chat``, ``event``) carry a per-session ``seq`` used to resume.
``docs/protocol.md`` documents every type declared here (a test keeps the two in step).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .fields import (
    ERROR_CODES,
    MAX_ID_CHARS,
    MessageId,
    ProtocolError,
    get_int,
    get_str,
    invalid,
    message_id,
    utf8,
)
from .protocol_media import (
    MEDIA_CLIENT_MESSAGES,
    MEDIA_SERVER_MESSAGES,
    MediaAnswer,
    MediaCandidate,
    MediaClosed,
    MediaGrid,
    MediaKeyframe,
    MediaLeave,
    MediaMain,
    MediaOffer,
    MediaSlots,
    MediaStats,
)

PROTOCOL_VERSION = 1
MAX_TOKEN_CHARS = 512

__all__ = [  # the protocol's public names (errors and ids are defined in .fields)
    "CLIENT_MESSAGES", "ERROR_CODES", "PROTOCOL_VERSION", "SERVER_MESSAGES", "ChatPosted",
    "ClientMessage", "ErrorReply", "Event", "Hello", "Join", "Joined", "Leave", "Left",
    "MessageId", "Ping", "Pong", "PresenceChanged", "ProtocolError", "Resumed", "SendChat",
    "ServerMessage", "SessionEnded", "Welcome", "encode", "json_fields", "parse_client_message",
    "payload", "stamp",
]


# ---------------------------------------------------------------- client → server


@dataclass(frozen=True)
class Hello:
    """Authenticate the connection, or resume a detached session."""

    type: ClassVar[str] = "hello"
    v: int
    """Protocol version; must be :data:`PROTOCOL_VERSION`."""
    token: str | None = None
    """A bearer token (``dcs_``, ``dcp_`` or ``dci_``); without it the session cookie is used."""
    resume: str | None = None
    """A ``resume_token`` from an earlier ``welcome``/``resumed``."""
    last_seq: int | None = None
    """The highest ``seq`` the client processed, to replay exactly what it missed."""
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> Hello:
        v = get_int(data, "v", re, required=True)
        if v != PROTOCOL_VERSION:
            raise ProtocolError("bad_version", f"protocol version {v} is not supported", re=re,
                                details={"supported": [PROTOCOL_VERSION]})
        return cls(
            v=PROTOCOL_VERSION,
            token=get_str(data, "token", re, required=False, max_chars=MAX_TOKEN_CHARS),
            resume=get_str(data, "resume", re, required=False, max_chars=MAX_TOKEN_CHARS),
            last_seq=get_int(data, "last_seq", re, required=False),
            id=re,
        )


@dataclass(frozen=True)
class Join:
    """Enter a meeting's room (one meeting per session; joining another leaves the first)."""

    type: ClassVar[str] = "join"
    meeting_id: int
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> Join:
        meeting_id = get_int(data, "meeting_id", re, required=True, minimum=1)
        assert meeting_id is not None
        return cls(meeting_id=meeting_id, id=re)


@dataclass(frozen=True)
class Leave:
    """Leave the current meeting; others see ``presence left`` at once."""

    type: ClassVar[str] = "leave"
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> Leave:
        return cls(id=re)


@dataclass(frozen=True)
class SendChat:
    """Post a chat message to the current meeting."""

    type: ClassVar[str] = "chat"
    text: str
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> SendChat:
        text = get_str(data, "text", re, required=True)
        assert text is not None
        return cls(text=text, id=re)


@dataclass(frozen=True)
class Ping:
    """Application keep-alive; the server answers ``pong`` with the same ``t``."""

    type: ClassVar[str] = "ping"
    t: float | int | str | None = None
    id: MessageId | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], re: MessageId | None) -> Ping:
        t = data.get("t")
        if isinstance(t, bool) or not (
            t is None
            or (isinstance(t, (int, float)) and math.isfinite(t))
            or (isinstance(t, str) and len(t) <= MAX_ID_CHARS)
        ):
            raise invalid("t", f"a number or a string of at most {MAX_ID_CHARS} characters", re)
        if isinstance(t, str):
            utf8(t, "t", re)
        return cls(t=t, id=re)


ClientMessage = (Hello | Join | Leave | SendChat | Ping | MediaOffer | MediaCandidate | MediaGrid
                 | MediaKeyframe | MediaLeave)
CLIENT_MESSAGES: dict[str, Any] = {cls.type: cls for cls in (Hello, Join, Leave, SendChat, Ping,
                                                             *MEDIA_CLIENT_MESSAGES)}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Turn one untrusted frame into a client message, or raise :class:`ProtocolError`."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("malformed_json", "the frame is not UTF-8") from None
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed_json", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed_json", "a message must be a JSON object")
    re = message_id(data)
    kind = data.get("type")
    if kind is None:
        raise ProtocolError("missing_field", "type is required", re=re, details={"field": "type"})
    if not isinstance(kind, str):
        raise invalid("type", "a string", re)
    cls = CLIENT_MESSAGES.get(kind)
    if cls is None:
        shown = kind[:40].encode("utf-8", "replace").decode("utf-8")
        raise ProtocolError("unknown_type", f"unknown message type {shown!r}", re=re,
                            details={"known": sorted(CLIENT_MESSAGES)})
    message: ClientMessage = cls.from_json(data, re)
    return message


# ---------------------------------------------------------------- server → client


@dataclass(frozen=True)
class Welcome:
    """hello accepted: who you are, the session, and the timing rules."""

    type: ClassVar[str] = "welcome"
    v: int
    session: str
    resume_token: str
    heartbeat_s: float
    resume_window_s: float
    limits: dict[str, Any]
    principal: dict[str, Any]
    resume_error: str | None = None


@dataclass(frozen=True)
class Resumed:
    """hello with ``resume`` re-attached a detached session; missed events follow."""

    type: ClassVar[str] = "resumed"
    v: int
    session: str
    resume_token: str
    heartbeat_s: float
    resume_window_s: float
    limits: dict[str, Any]
    principal: dict[str, Any]
    meeting: dict[str, Any] | None
    replayed: int
    gap: bool


@dataclass(frozen=True)
class Joined:
    """The snapshot of a meeting room: who is here and the recent chat."""

    type: ClassVar[str] = "joined"
    meeting: dict[str, Any]
    you: dict[str, Any]
    presence: list[dict[str, Any]]
    chat: list[dict[str, Any]]


@dataclass(frozen=True)
class Left:
    """This session is no longer in the meeting."""

    type: ClassVar[str] = "left"
    meeting_id: int
    reason: str


@dataclass(frozen=True)
class PresenceChanged:
    """Someone else entered or left the meeting."""

    type: ClassVar[str] = "presence"
    meeting_id: int
    event: str
    participant: dict[str, Any]
    reason: str | None = None


@dataclass(frozen=True)
class ChatPosted:
    """A chat message in the meeting (also sent back to its sender, with ``re``)."""

    type: ClassVar[str] = "chat"
    id: int
    meeting_id: int
    sender: dict[str, Any]
    text: str
    at: str


@dataclass(frozen=True)
class Pong:
    """The answer to ``ping``."""

    type: ClassVar[str] = "pong"
    t: float | int | str | None


@dataclass(frozen=True)
class Event:
    """Any other domain event published on the meeting's topic (e.g. ``meeting.state``)."""

    type: ClassVar[str] = "event"
    topic: str
    event: dict[str, Any]


@dataclass(frozen=True)
class ErrorReply:
    """A message was refused; the connection stays open unless the close codes say otherwise."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class SessionEnded:
    """The server ended this session (its credential is no longer valid, or its point was
    removed from the meeting); the socket closes with 4003 right after. Do not resume."""

    type: ClassVar[str] = "session.ended"
    reason: str
    """``expired``, ``revoked``, ``disabled`` or ``removed``."""
    code: str
    """An error code naming the cause, for the UI text (``token_expired``, ``point_removed``…)."""


ServerMessage = (
    Welcome | Resumed | Joined | Left | PresenceChanged | ChatPosted | Pong | Event | ErrorReply
    | MediaAnswer | MediaSlots | MediaMain | MediaStats | MediaClosed | SessionEnded
)
SERVER_MESSAGES: dict[str, Any] = {
    cls.type: cls
    for cls in (Welcome, Resumed, Joined, Left, PresenceChanged, ChatPosted, Pong, Event,
                ErrorReply, *MEDIA_SERVER_MESSAGES, SessionEnded)
}
OMIT_WHEN_NONE = frozenset({"details", "reason", "resume_error"})
ALIASES = {"sender": "from"}  # JSON names that are Python keywords


def json_fields(cls: type) -> list[str]:
    """The JSON field names of a message class (without ``type``, ``id`` of client messages)."""
    names = [ALIASES.get(f.name, f.name) for f in dataclasses.fields(cls)]
    return [n for n in names if not (n == "id" and cls in CLIENT_MESSAGES.values())]


def payload(message: ServerMessage) -> dict[str, Any]:
    """The JSON object of a server message (``type`` first)."""
    body: dict[str, Any] = {"type": message.type}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if not (value is None and f.name in OMIT_WHEN_NONE):
            body[ALIASES.get(f.name, f.name)] = value
    return body


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(message: ServerMessage, *, re: MessageId | None = None) -> str:
    """One frame: the message, with ``re`` when it answers a client message that had an id."""
    body = payload(message)
    if re is not None:
        body["re"] = re
    return dumps(body)


def stamp(body: str, *, seq: int, re: MessageId | None = None) -> str:
    """Add ``seq`` (and ``re``) to an already encoded object without re-encoding it."""
    head = f'{{"seq":{seq},'
    if re is not None:
        head += f'"re":{dumps(re)},'
    return head + body[1:]


def error(exc: ProtocolError) -> ErrorReply:
    return ErrorReply(exc.code, exc.message, exc.details)
