"""A signalling session: one authenticated client, surviving short reconnects.

A session outlives its :class:`Connection`: when the socket drops uncleanly it is *detached*
for ``resume_window_s``; it keeps its place in the meeting and keeps numbering (``seq``) the
events it would have received, so ``hello {resume}`` can replay exactly what was missed.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from meetings.models import Principal
from meetings.presence import PresenceEntry

from .connection import Connection
from .protocol import MessageId, ServerMessage, encode, stamp
from .revalidate import Credential

REPLAY_BUFFER = 256
"""Sequenced events kept per session for resume; a longer gap gets a fresh ``joined``."""


class SessionState(enum.Enum):
    ATTACHED = "attached"
    DETACHED = "detached"  # socket gone, waiting for a resume
    GONE = "gone"  # finished; never comes back


@dataclass(frozen=True)
class RoomEvent:
    """One bus event of a meeting, encoded once for every local session."""

    kind: str
    """``presence.joined``, ``presence.left``, ``chat`` or ``event``."""
    body: str
    """The encoded server message, without ``seq``/``re``."""
    subject: str | None = None
    """The participant key (presence) or the sending session key (chat)."""
    chat_id: int | None = None
    re: MessageId | None = None
    """The sender's correlation id, given back only to the sending session."""


def new_key() -> str:
    return secrets.token_hex(8)


@dataclass(eq=False)
class Session:
    """What the hub knows about one client across its connections."""

    principal: Principal
    connection: Connection | None
    key: str = field(default_factory=new_key)
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    state: SessionState = SessionState.ATTACHED
    meeting_id: int | None = None
    meeting: dict[str, Any] | None = None
    """``{id, title, state}`` of the meeting joined, as last seen."""
    entry: PresenceEntry | None = None
    log_id: int | None = None
    seq: int = 0
    sent_seq: int = 0
    """The highest ``seq`` a connection of this session wrote before it went away."""
    ring: deque[tuple[int, str, MessageId | None]] = field(
        default_factory=lambda: deque(maxlen=REPLAY_BUFFER)
    )
    pending: list[RoomEvent] | None = None
    """Events that arrive while ``joined`` is being prepared (None when live)."""
    expiry: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Serialises joining and leaving (client messages, meeting close, expiry)."""
    credential: Credential | None = None
    """What admitted this session (re-checked on resume and every ``revalidate_s``)."""

    # ------------------------------------------------------------ outgoing messages

    def reply(self, message: ServerMessage, re: MessageId | None = None) -> None:
        """An unsequenced direct message (replies, errors); lost if the socket is gone."""
        if self.connection is not None:
            self.connection.send(encode(message, re=re))

    def deliver(self, body: str, re: MessageId | None = None) -> None:
        """A sequenced meeting event: numbered, kept for replay, sent if attached."""
        self.seq += 1
        self.ring.append((self.seq, body, re))
        if self.connection is not None:
            self.connection.send(stamp(body, seq=self.seq, re=re), self.seq)

    def offer(self, event: RoomEvent) -> None:
        """A room event: buffered while joining, skipped when it is about ourselves."""
        if self.pending is not None:
            self.pending.append(event)
            return
        if event.kind.startswith("presence.") and event.subject == self.key:
            return
        self.deliver(event.body, event.re if event.subject == self.key else None)

    def go_live(self, known_keys: set[str], last_chat_id: int) -> None:
        """Deliver what arrived while joining, minus what the snapshot already showed."""
        pending, self.pending = self.pending or [], None
        for event in pending:
            if event.kind == "presence.joined":
                if event.subject in known_keys:
                    continue
                known_keys.add(event.subject or "")
            elif event.kind == "presence.left":
                if event.subject not in known_keys:
                    continue
                known_keys.discard(event.subject or "")
            elif event.kind == "chat" and (event.chat_id or 0) <= last_chat_id:
                continue
            self.offer(event)

    # ------------------------------------------------------------ resume

    def missed_since(self, last_seq: int) -> list[tuple[int, str, MessageId | None]] | None:
        """Events after ``last_seq``, or None when some were already pushed out of the ring."""
        if last_seq >= self.seq:
            return []
        if not self.ring or self.ring[0][0] > last_seq + 1:
            return None
        return [item for item in self.ring if item[0] > last_seq]

    def attach(self, connection: Connection) -> None:
        self.connection = connection
        self.state = SessionState.ATTACHED
        self.resume_token = secrets.token_urlsafe(24)

    def detach(self) -> Connection | None:
        old, self.connection = self.connection, None
        if old is not None:
            self.sent_seq = max(self.sent_seq, old.sent_seq)
        return old
