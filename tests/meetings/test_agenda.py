"""The agenda domain: ordering with sub-items, positions, publication and the current item."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meetings.agenda import AgendaBook, AgendaItemDraft
from meetings.bus import MemoryBus
from meetings.calendar import MeetingCalendar, MeetingDraft
from meetings.errors import Invalid, NotFound
from meetings.registry import Registry
from meetings.store.db import Database

NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture
async def book(tmp_path: Path) -> AgendaBook:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await db.migrate()
    yield AgendaBook(db, MemoryBus())  # type: ignore[misc]
    await db.close()


async def test_order_positions_and_deletion(book: AgendaBook) -> None:
    meeting = await MeetingCalendar(book.db, book.bus, Registry(book.db)).create(MeetingDraft("Họp", NOW),
                                                                                  created_by=None)
    mid = meeting.id
    a = await book.create(mid, AgendaItemDraft("Một"))
    b = await book.create(mid, AgendaItemDraft("Hai", duration_min=15))
    a1 = await book.create(mid, AgendaItemDraft("Một - a", parent_id=a.id))
    first = await book.create(mid, AgendaItemDraft("Không", position=1))
    agenda = await book.get(mid)
    assert [i.title for i in agenda.items] == ["Không", "Một", "Một - a", "Hai"]
    assert [i.position for i in agenda.children_of(None)] == [1, 2, 3]
    await book.set_current(mid, a1.id)
    await book.delete(mid, a.id)  # takes its sub-item and the current mark with it
    agenda = await book.get(mid)
    assert [(i.title, i.position) for i in agenda.items] == [("Không", 1), ("Hai", 2)]
    assert agenda.current_item_id is None
    with pytest.raises(NotFound):
        await book.item(mid, a1.id)
    await book.reorder(mid, [b.id, first.id])
    assert [i.title for i in (await book.get(mid)).items] == ["Hai", "Không"]
    assert not (await book.get(mid)).published
    assert (await book.publish(mid)).published


async def test_bad_drafts(book: AgendaBook) -> None:
    for kwargs in ({"title": " "}, {"title": "A", "duration_min": 1441}, {"title": "A", "position": 0},
                   {"title": "A", "presenter": "p" * 256}):
        with pytest.raises(Invalid):
            AgendaItemDraft(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(Invalid):
        await book.publish(12345)  # nothing to publish
