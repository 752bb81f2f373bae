"""A meeting room on this node: its local sessions and the one bus subscription feeding them.

Every presence change and chat message travels through the bus, also to the node that
published it, so all nodes (and all sessions) see one order of events. The room turns each
bus event into a protocol message once and offers it to every local session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from meetings.bus import Envelope, Subscription

from .protocol import ChatPosted, Event, PresenceChanged, ServerMessage, encode
from .session import RoomEvent, Session

log = logging.getLogger(__name__)

# Bus event types the signalling layer publishes on ``meeting.<id>`` (see docs/protocol.md).
PRESENCE_JOINED = "presence.joined"
PRESENCE_LEFT = "presence.left"
CHAT_MESSAGE = "chat.message"
ADMISSION_REFUSED = "admission.refused"  # relayed as an ``event`` (docs/protocol.md)


def room_event(envelope: Envelope) -> RoomEvent:
    """The protocol message for one bus event; raises KeyError/TypeError/ValueError if malformed."""
    event: Mapping[str, Any] = envelope.event
    kind = event.get("type")
    message: ServerMessage
    if kind in (PRESENCE_JOINED, PRESENCE_LEFT):
        participant = dict(event["participant"])
        verb = "joined" if kind == PRESENCE_JOINED else "left"
        message = PresenceChanged(
            int(event["meeting_id"]),
            verb,
            participant,
            event.get("reason") if verb == "left" else None,
        )
        return RoomEvent(kind, encode(message), subject=str(participant["key"]))
    if kind == CHAT_MESSAGE:
        body = event["message"]
        message = ChatPosted(
            int(body["id"]),
            int(body["meeting_id"]),
            dict(body["from"]),
            str(body["text"]),
            str(body["at"]),
        )
        re = event.get("re")
        if not (re is None or isinstance(re, (str, int))):
            re = None
        return RoomEvent(
            "chat", encode(message), subject=event.get("session"), chat_id=message.id, re=re
        )
    if not isinstance(kind, str):
        raise TypeError("bus event without a type")
    return RoomEvent("event", encode(Event(envelope.topic, dict(event))))


class Room:
    """Local sessions of one meeting, fed by a relay task the room owns."""

    def __init__(
        self,
        meeting_id: int,
        subscription: Subscription,
        *,
        on_event: Callable[[int, Mapping[str, Any]], None],
    ) -> None:
        self.meeting_id = meeting_id
        self.sessions: set[Session] = set()
        self._subscription = subscription
        self._on_event = on_event
        self._relay: asyncio.Task[None] = asyncio.create_task(
            self._run(), name=f"ws-room {meeting_id}"
        )

    async def _run(self) -> None:
        async for envelope in self._subscription:
            try:
                event = room_event(envelope)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning(
                    "meeting %d: ignoring malformed bus event %r: %s",
                    self.meeting_id,
                    dict(envelope.event),
                    exc,
                )
                continue
            for session in list(self.sessions):
                try:
                    session.offer(event)
                except Exception:  # one broken session must not starve the others
                    log.exception(
                        "meeting %d: delivering to session %s failed", self.meeting_id, session.key
                    )
            self._on_event(self.meeting_id, envelope.event)
            await asyncio.sleep(0)  # let the writers drain between events of a burst

    async def close(self) -> None:
        """Stop the relay and release the subscription; safe to call twice."""
        await self._subscription.close()
        self._relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay
