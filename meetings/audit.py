"""The audit log (nhật ký): who did what and when. Append-only; admins read it.

Record inside the transaction of the action itself (``record(conn, …)``) so an action and its
audit entry are committed together or not at all. Never put a secret ballot's choice, a
password or a token in ``details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .clock import utcnow
from .models import Principal
from .store.db import Database
from .store.tables import audit_log


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_kind: str
    actor_user_id: int | None
    actor_point_id: int | None
    actor_label: str
    action: str
    meeting_id: int | None
    target: str
    details: Mapping[str, Any]


async def record(conn: AsyncConnection, actor: Principal | None, action: str, *,
                 meeting_id: int | None = None, target: str = "", details: Mapping[str, Any] | None = None) -> None:
    """Append one entry within the caller's transaction."""
    await conn.execute(audit_log.insert().values(
        at=utcnow(),
        actor_kind=actor.kind if actor else "system",
        actor_user_id=actor.user.id if actor and actor.user else None,
        actor_point_id=actor.point.id if actor and actor.point and not actor.user else None,
        actor_label=(actor.label if actor else "system")[:255],
        action=action[:64],
        meeting_id=meeting_id,
        target=target[:255],
        details=dict(details or {}),
    ))


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, actor: Principal | None, action: str, **kwargs: Any) -> None:
        async with self.db.transaction() as conn:
            await record(conn, actor, action, **kwargs)

    async def list(self, *, meeting_id: int | None = None, action: str | None = None,
                   limit: int = 200, before_id: int | None = None) -> list[AuditEntry]:
        """Newest first; page with ``before_id``."""
        stmt = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, 1000)))
        if meeting_id is not None:
            stmt = stmt.where(audit_log.c.meeting_id == meeting_id)
        if action:
            stmt = stmt.where(audit_log.c.action == action)
        if before_id is not None:
            stmt = stmt.where(audit_log.c.id < before_id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [AuditEntry(r.id, r.at, r.actor_kind, r.actor_user_id, r.actor_point_id, r.actor_label,
                           r.action, r.meeting_id, r.target, r.details or {}) for r in rows]
