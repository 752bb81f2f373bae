"""The agenda of a meeting (chương trình họp): ordered items with optional sub-items.

The secretary edits a draft, publishes it to the invited points, and during the meeting marks
the item under way (the current item); every change is an event on the meeting's topic so
viewers refetch. Delegates see only a published agenda; the meeting's staff see drafts too.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .audit import record
from .bus import Bus
from .calendar import new_id, topic
from .clock import utcnow
from .errors import Invalid, NotFound
from .models import Principal
from .store.db import Database
from .store.tables_documents import agenda_items, agenda_states
from .text import clean_line

MAX_TITLE = 500
MAX_PRESENTER = 255
MAX_DURATION_MIN = 24 * 60
MAX_ITEMS = 500


@dataclass(frozen=True)
class AgendaItem:
    """One item (mục) of the agenda; ``parent_id`` is set for a sub-item."""

    id: int
    meeting_id: int
    parent_id: int | None
    position: int
    title: str
    presenter: str
    duration_min: int | None


@dataclass(frozen=True)
class Agenda:
    """Items in display order (parents before their children, siblings by position)."""

    meeting_id: int
    items: tuple[AgendaItem, ...]
    published: bool
    current_item_id: int | None

    def children_of(self, parent_id: int | None) -> list[AgendaItem]:
        return [item for item in self.items if item.parent_id == parent_id]


@dataclass(frozen=True)
class AgendaItemDraft:
    title: str
    presenter: str = ""
    duration_min: int | None = None
    parent_id: int | None = None
    position: int | None = None
    """1-based place among its siblings; None appends."""

    def __post_init__(self) -> None:
        check_title(self.title)
        check_presenter(self.presenter)
        check_duration(self.duration_min)
        if self.position is not None and not 1 <= self.position <= MAX_ITEMS:
            raise Invalid("position: between 1 and 500", code="invalid_field", details={"field": "position"})


def check_title(title: str) -> str:
    text = clean_line(title)
    if not text or len(text) > MAX_TITLE:
        raise Invalid("title: 1 to 500 characters", code="invalid_field", details={"field": "title"})
    return text


def check_presenter(presenter: str) -> str:
    text = clean_line(presenter)
    if len(text) > MAX_PRESENTER:
        raise Invalid("presenter: at most 255 characters", code="invalid_field", details={"field": "presenter"})
    return text


def check_duration(minutes: int | None) -> None:
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int)
                                or not 0 <= minutes <= MAX_DURATION_MIN):
        raise Invalid("duration_min: whole minutes between 0 and 1440", code="invalid_field",
                      details={"field": "duration_min"})


def _item(row: Any) -> AgendaItem:
    return AgendaItem(row.id, row.meeting_id, row.parent_id, row.position, row.title, row.presenter,
                      row.duration_min)


def _ordered(items: builtins.list[AgendaItem]) -> tuple[AgendaItem, ...]:
    by_parent: dict[int | None, builtins.list[AgendaItem]] = {}
    for item in items:
        by_parent.setdefault(item.parent_id, []).append(item)
    for siblings in by_parent.values():
        siblings.sort(key=lambda i: (i.position, i.id))
    out: builtins.list[AgendaItem] = []

    def walk(parent: int | None) -> None:
        for item in by_parent.get(parent, []):
            out.append(item)
            walk(item.id)

    walk(None)
    return tuple(out)


class AgendaBook:
    """Reads and edits meeting agendas; publishes ``agenda.changed`` / ``agenda.current``."""

    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def get(self, meeting_id: int) -> Agenda:
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(agenda_items).where(
                agenda_items.c.meeting_id == meeting_id))).all()
            state = (await conn.execute(sa.select(agenda_states).where(
                agenda_states.c.meeting_id == meeting_id))).first()
        return Agenda(meeting_id, _ordered([_item(r) for r in rows]),
                      bool(state.published) if state else False,
                      state.current_item_id if state else None)

    async def item(self, meeting_id: int, item_id: int) -> AgendaItem:
        async with self.db.connect() as conn:
            return await self._item_in(conn, meeting_id, item_id)

    async def _item_in(self, conn: AsyncConnection, meeting_id: int, item_id: int) -> AgendaItem:
        row = (await conn.execute(sa.select(agenda_items).where(
            agenda_items.c.id == item_id, agenda_items.c.meeting_id == meeting_id))).first()
        if row is None:
            raise NotFound("no such agenda item in this meeting", code="not_found",
                           details={"item_id": item_id})
        return _item(row)

    async def create(self, meeting_id: int, draft: AgendaItemDraft, actor: Principal | None = None) -> AgendaItem:
        async with self.db.transaction() as conn:
            if draft.parent_id is not None:
                parent = await self._item_in(conn, meeting_id, draft.parent_id)
                if parent.parent_id is not None:
                    raise Invalid("sub-items cannot have sub-items", code="invalid_field",
                                  details={"field": "parent_id"})
            count = (await conn.execute(sa.select(sa.func.count()).select_from(agenda_items).where(
                agenda_items.c.meeting_id == meeting_id))).scalar_one()
            if count >= MAX_ITEMS:
                raise Invalid("an agenda has at most 500 items", code="invalid_field",
                              details={"field": "title"})
            siblings = self._siblings(meeting_id, draft.parent_id)
            last = (await conn.execute(sa.select(sa.func.max(agenda_items.c.position)).where(
                siblings))).scalar_one() or 0
            position = last + 1
            if draft.position is not None and draft.position <= last:
                position = draft.position
                await conn.execute(agenda_items.update().where(
                    siblings, agenda_items.c.position >= position).values(
                    position=agenda_items.c.position + 1))
            result = await conn.execute(agenda_items.insert().values(
                meeting_id=meeting_id, parent_id=draft.parent_id, position=position,
                title=check_title(draft.title), presenter=check_presenter(draft.presenter),
                duration_min=draft.duration_min, created_at=utcnow()))
            item_id = new_id(result)
            await record(conn, actor, "agenda.item_create", meeting_id=meeting_id, target=f"agenda_item:{item_id}")
            item = await self._item_in(conn, meeting_id, item_id)
        await self._changed(meeting_id)
        return item

    @staticmethod
    def _siblings(meeting_id: int, parent_id: int | None) -> Any:
        parent = (agenda_items.c.parent_id.is_(None) if parent_id is None
                  else agenda_items.c.parent_id == parent_id)
        return sa.and_(agenda_items.c.meeting_id == meeting_id, parent)

    async def update(self, meeting_id: int, item_id: int, *, title: str | None = None,
                     presenter: str | None = None, duration_min: int | None = None,
                     clear_duration: bool = False) -> AgendaItem:
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = check_title(title)
        if presenter is not None:
            values["presenter"] = check_presenter(presenter)
        if duration_min is not None or clear_duration:
            check_duration(duration_min)
            values["duration_min"] = duration_min
        async with self.db.transaction() as conn:
            await self._item_in(conn, meeting_id, item_id)
            if values:
                await conn.execute(agenda_items.update().where(agenda_items.c.id == item_id).values(**values))
            item = await self._item_in(conn, meeting_id, item_id)
        await self._changed(meeting_id)
        return item

    async def delete(self, meeting_id: int, item_id: int, actor: Principal | None = None) -> None:
        async with self.db.transaction() as conn:
            item = await self._item_in(conn, meeting_id, item_id)
            await conn.execute(agenda_states.update().where(
                agenda_states.c.meeting_id == meeting_id, agenda_states.c.current_item_id == item_id
            ).values(current_item_id=None))
            await conn.execute(agenda_items.delete().where(agenda_items.c.parent_id == item_id))
            await conn.execute(agenda_items.delete().where(agenda_items.c.id == item_id))
            await conn.execute(agenda_items.update().where(
                self._siblings(meeting_id, item.parent_id), agenda_items.c.position > item.position
            ).values(position=agenda_items.c.position - 1))
            await record(conn, actor, "agenda.item_delete", meeting_id=meeting_id,
                         target=f"agenda_item:{item_id}", details={"title": item.title[:200]})
        await self._changed(meeting_id)

    async def reorder(self, meeting_id: int, item_ids: builtins.list[int]) -> Agenda:
        """Put sibling items in the given order (all siblings of one parent, each once)."""
        if not item_ids or len(set(item_ids)) != len(item_ids):
            raise Invalid("item_ids: each item once", code="invalid_field", details={"field": "item_ids"})
        async with self.db.transaction() as conn:
            items = [await self._item_in(conn, meeting_id, i) for i in item_ids]
            parents = {item.parent_id for item in items}
            if len(parents) != 1:
                raise Invalid("item_ids: items of one level under one parent", code="invalid_field",
                              details={"field": "item_ids"})
            parent = parents.pop()
            all_ids = set((await conn.execute(sa.select(agenda_items.c.id).where(
                self._siblings(meeting_id, parent)))).scalars())
            if all_ids != set(item_ids):
                raise Invalid("item_ids: give every item of that level", code="invalid_field",
                              details={"field": "item_ids"})
            for position, item_id in enumerate(item_ids, start=1):
                await conn.execute(agenda_items.update().where(agenda_items.c.id == item_id).values(
                    position=position))
        await self._changed(meeting_id)
        return await self.get(meeting_id)

    async def _state(self, conn: AsyncConnection, meeting_id: int, **values: Any) -> None:
        exists = (await conn.execute(sa.select(agenda_states.c.meeting_id).where(
            agenda_states.c.meeting_id == meeting_id))).first()
        if exists:
            await conn.execute(agenda_states.update().where(
                agenda_states.c.meeting_id == meeting_id).values(**values))
        else:
            await conn.execute(agenda_states.insert().values(
                meeting_id=meeting_id, **{"published": False, **values}))

    async def publish(self, meeting_id: int, actor: Principal | None = None) -> Agenda:
        async with self.db.transaction() as conn:
            count = (await conn.execute(sa.select(sa.func.count()).select_from(agenda_items).where(
                agenda_items.c.meeting_id == meeting_id))).scalar_one()
            if count == 0:
                raise Invalid("the agenda has no items yet", code="invalid_field", details={"field": "items"})
            await self._state(conn, meeting_id, published=True, published_at=utcnow())
            await record(conn, actor, "agenda.publish", meeting_id=meeting_id, target=f"meeting:{meeting_id}",
                         details={"items": count})
        await self._changed(meeting_id)
        return await self.get(meeting_id)

    async def set_current(self, meeting_id: int, item_id: int | None) -> Agenda:
        async with self.db.transaction() as conn:
            if item_id is not None:
                await self._item_in(conn, meeting_id, item_id)
            await self._state(conn, meeting_id, current_item_id=item_id)
        await self.bus.publish(topic(meeting_id), {"type": "agenda.current", "item_id": item_id})
        return await self.get(meeting_id)

    async def _changed(self, meeting_id: int) -> None:
        await self.bus.publish(topic(meeting_id), {"type": "agenda.changed"})
