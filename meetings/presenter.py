"""Presenter follow (theo người trình bày): the presenter's document, page and zoom rectangle
are meeting state; followers' viewers move with it, a delegate may browse freely and return
with one action, and the presenter sees who is not following.

The view is stored in SQL (every node answers the same); who stopped following is kept per
node in memory (a viewer re-announces it when it reconnects) and only counts go on the bus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .bus import Bus
from .calendar import topic
from .clock import utcnow
from .errors import Invalid
from .models import Principal
from .store.db import Database
from .store.tables_documents import presenter_views


@dataclass(frozen=True)
class PresenterView:
    meeting_id: int
    document_id: int
    version: int
    page: int
    rect: tuple[float, float, float, float] | None
    presenter_label: str
    updated_at: datetime


@dataclass(frozen=True)
class Follower:
    """A viewer that said it does not follow the presenter."""

    key: str
    label: str
    point_code: str | None


def check_rect(rect: Any) -> tuple[float, float, float, float] | None:
    """A zoom rectangle normalised to the page (0..1), or None for the whole page."""
    if rect is None:
        return None
    if not isinstance(rect, list) or len(rect) != 4 or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            or not 0 <= v <= 1 for v in rect):
        raise Invalid("rect: [x0, y0, x1, y1] with numbers from 0 to 1", code="invalid_field",
                      details={"field": "rect"})
    x0, y0, x1, y1 = (float(v) for v in rect)
    if x1 <= x0 or y1 <= y0:
        raise Invalid("rect: x1 > x0 and y1 > y0", code="invalid_field", details={"field": "rect"})
    return (x0, y0, x1, y1)


def viewer_key(principal: Principal) -> str:
    if principal.user is not None:
        return f"user:{principal.user.id}"
    return f"point:{principal.point.id}" if principal.point else "anonymous"


class PresenterDesk:
    """The presenter's view per meeting and who is not following it."""

    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self._not_following: dict[int, dict[str, Follower]] = {}

    async def get(self, meeting_id: int) -> PresenterView | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(presenter_views).where(
                presenter_views.c.meeting_id == meeting_id))).first()
        if row is None:
            return None
        rect = tuple(float(v) for v in row.rect) if row.rect else None
        return PresenterView(row.meeting_id, row.document_id, row.version, row.page,
                             rect, row.presenter_label, row.updated_at)  # type: ignore[arg-type]

    async def set(self, meeting_id: int, *, document_id: int, version: int, page: int,
                  rect: tuple[float, float, float, float] | None, presenter: Principal) -> PresenterView:
        values = {"document_id": document_id, "version": version, "page": page,
                  "rect": list(rect) if rect else None, "presenter_label": presenter.label[:255],
                  "updated_at": utcnow()}
        async with self.db.transaction() as conn:
            result = await conn.execute(presenter_views.update().where(
                presenter_views.c.meeting_id == meeting_id).values(**values))
            if result.rowcount == 0:
                await conn.execute(presenter_views.insert().values(meeting_id=meeting_id, **values))
        await self.bus.publish(topic(meeting_id), {
            "type": "presenter.view", "document_id": document_id, "version": version, "page": page,
            "rect": list(rect) if rect else None})
        view = await self.get(meeting_id)
        assert view is not None
        return view

    async def set_following(self, meeting_id: int, viewer: Principal, following: bool) -> None:
        key = viewer_key(viewer)
        viewers = self._not_following.setdefault(meeting_id, {})
        if following:
            viewers.pop(key, None)
        else:
            viewers[key] = Follower(key, viewer.label, viewer.point.code if viewer.point else None)
        await self.bus.publish(topic(meeting_id), {"type": "presenter.followers",
                                                   "not_following": len(viewers)})

    def not_following(self, meeting_id: int) -> list[Follower]:
        return sorted(self._not_following.get(meeting_id, {}).values(), key=lambda f: f.label)
