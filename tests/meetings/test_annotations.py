"""Annotation shapes, layers and authorship (unit level, real database)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meetings.annotations import AnnotationBook, author_key, validate_data
from meetings.bus import MemoryBus
from meetings.errors import Forbidden, Invalid, NotFound
from meetings.models import BridgePoint, PointLevel, Principal, Role, User
from meetings.store.db import Database

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def user(uid: int) -> Principal:
    return Principal("user", user=User(uid, f"u{uid}", f"Người {uid}", Role.DELEGATE, False, NOW))


@pytest.mark.parametrize("kind,data", [
    ("ink", {"strokes": [[[0, 0], [1, 1]]]}),
    ("highlight", {"rect": [0.9, 0.9, 0.1, 0.1]}),
    ("note", {"at": [0.5, 0.5], "text": "  Ghi chú  "}),
    ("arrow", {"from": [0, 0], "to": [1, 0.5], "width": 4}),
])
def test_valid_shapes_are_normalised(kind: str, data: dict[str, Any]) -> None:
    clean = validate_data(kind, data)
    if kind == "highlight":
        assert clean["rect"] == [0.1, 0.1, 0.9, 0.9]
    if kind == "note":
        assert clean["text"] == "Ghi chú"
    if kind in ("ink", "highlight", "arrow"):
        assert clean["color"].startswith("#")


@pytest.mark.parametrize("kind,data", [
    ("ink", {"strokes": []}), ("ink", {"strokes": [[[0.1, float("nan")]]]}), ("ink", {"strokes": [[[True, 0]]]}),
    ("ink", {"strokes": [[[0, 0]] * 5001]}), ("highlight", {"rect": [0, 0, 1]}), ("note", {"at": [0, 0]}),
    ("note", {"at": [0, 0], "text": "x" * 4001}), ("arrow", {"from": [0, 0]}), ("ink", "strokes"),
    ("ink", {"strokes": [[[0, 0]]], "width": 100}), ("circle", {}),
])
def test_invalid_shapes_are_refused(kind: str, data: Any) -> None:
    with pytest.raises(Invalid):
        validate_data(kind, data)


def test_author_key() -> None:
    assert author_key(user(7)) == "user:7"
    device = Principal("point", point=BridgePoint(3, "075", "Yên Sơn", PointLevel.DISTRICT, None, True, NOW))
    assert author_key(device) == "point:3"
    with pytest.raises(Forbidden):
        author_key(Principal("user"))


async def test_layers_and_authorship(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await db.migrate()
    from meetings.calendar import MeetingCalendar, MeetingDraft
    from meetings.registry import Registry
    from meetings.store.tables_documents import document_versions, documents

    bus = MemoryBus()
    meeting = await MeetingCalendar(db, bus, Registry(db)).create(MeetingDraft("Họp", NOW), created_by=None)
    async with db.transaction() as conn:
        await conn.execute(documents.insert().values(
            id=1, meeting_id=meeting.id, title="T", visibility="all", allowed_roles=[], allowed_points=[],
            current_version=1, created_at=NOW))
        await conn.execute(document_versions.insert().values(
            document_id=1, version=1, sha256="a" * 64, filename="t.pdf", size_bytes=1, page_count=1,
            pages=[[595, 842]], warnings=[], uploaded_by_label="x", uploaded_at=NOW))
    book = AnnotationBook(db, bus)
    sub = await bus.subscribe(f"meeting.{meeting.id}")
    a, b = user(1), user(2)
    private = await book.create(meeting_id=meeting.id, document_id=1, version=1, page=1, layer="private",
                                kind="note", data={"at": [0.1, 0.1], "text": "riêng"}, author=a)
    shared = await book.create(meeting_id=meeting.id, document_id=1, version=1, page=1, layer="shared",
                               kind="arrow", data={"from": [0, 0], "to": [1, 1]}, author=b)
    assert [x.id for x in await book.visible(1, 1, a)] == [private.id, shared.id]
    assert [x.id for x in await book.visible(1, 1, b)] == [shared.id]
    assert [x.id for x in await book.visible(1, 1, a, ("private",))] == [private.id]
    assert await book.visible(1, 2, a) == []
    with pytest.raises(NotFound):
        await book.get_own(private.id, b)
    with pytest.raises(Forbidden):
        await book.get_own(shared.id, a)
    assert (await book.get_own(private.id, a)).data["text"] == "riêng"
    event = (await sub.get()).event  # type: ignore[union-attr]
    assert event == {"type": "annotation.shared", "document_id": 1, "version": 1, "annotation_id": shared.id}
    assert sub._queue.empty()  # the private note was never published
    await book.delete(meeting.id, private)
    with pytest.raises(NotFound):
        await book.get(private.id)
    await db.close()
