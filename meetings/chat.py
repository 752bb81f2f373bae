"""Meeting chat (trao đổi trong hội nghị): cleaned, length-checked and kept in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .clock import isoformat, utcnow
from .errors import Invalid
from .models import Principal
from .store.db import Database
from .store.tables import bridge_points, chat_messages
from .text import clean_text


@dataclass(frozen=True)
class ChatMessage:
    """One chat message as stored."""

    id: int
    meeting_id: int
    kind: str
    """``user`` or ``point``: who sent it."""
    sender: str
    """The sender's label at the time (display name or point name)."""
    point_code: str | None
    """The sender's bridge point (a device's own point, or a user's home point)."""
    text: str
    at: datetime

    def sender_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "label": self.sender}
        if self.point_code is not None:
            out["point_code"] = self.point_code
        return out

    def as_json(self) -> dict[str, Any]:
        """The protocol form (``chat`` message body without ``type``)."""
        return {
            "id": self.id,
            "meeting_id": self.meeting_id,
            "from": self.sender_json(),
            "text": self.text,
            "at": isoformat(self.at),
        }


_SELECT = sa.select(chat_messages, bridge_points.c.code.label("point_code")).outerjoin(
    bridge_points, bridge_points.c.id == chat_messages.c.point_id
)


def _message(row: Any) -> ChatMessage:
    return ChatMessage(
        id=row.id,
        meeting_id=row.meeting_id,
        kind="user" if row.user_id is not None else "point",
        sender=row.sender,
        point_code=row.point_code,
        text=row.text,
        at=row.created_at,
    )


class MeetingChat:
    """Posts and reads a meeting's chat. Permission checks are the caller's job."""

    def __init__(self, db: Database, *, max_chars: int = 2000) -> None:
        self.db = db
        self.max_chars = max_chars

    def clean(self, text: str) -> str:
        """The text as it will be stored, or :class:`Invalid` (``text_empty``/``text_too_long``)."""
        cleaned = clean_text(text)
        if not cleaned:
            raise Invalid("the message is empty", code="text_empty")
        if len(cleaned) > self.max_chars:
            raise Invalid(
                f"the message is longer than {self.max_chars} characters",
                code="text_too_long",
                details={"max_chars": self.max_chars},
            )
        return cleaned

    async def post(self, meeting_id: int, principal: Principal, text: str) -> ChatMessage:
        cleaned = self.clean(text)
        point = principal.point
        now = utcnow()
        async with self.db.transaction() as conn:
            result = await conn.execute(
                chat_messages.insert().values(
                    meeting_id=meeting_id,
                    point_id=point.id if point else None,
                    user_id=principal.user.id if principal.user else None,
                    sender=principal.label[:255],
                    text=cleaned,
                    created_at=now,
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return ChatMessage(
            id=int(key[0]),
            meeting_id=meeting_id,
            kind="user" if principal.user else "point",
            sender=principal.label[:255],
            point_code=point.code if point else None,
            text=cleaned,
            at=now,
        )

    async def recent(self, meeting_id: int, limit: int) -> list[ChatMessage]:
        """The last ``limit`` messages of the meeting, oldest first."""
        if limit <= 0:
            return []
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    _SELECT.where(chat_messages.c.meeting_id == meeting_id)
                    .order_by(chat_messages.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [_message(r) for r in reversed(rows)]
