"""Annotations on a document version (ghi chú trên tài liệu), in two layers.

* ``private``: only its author ever sees it (never in events);
* ``shared``: drawn by the presenter or secretary, seen live by everyone viewing — the event
  carries only ids, viewers refetch through REST, which checks the document's access.

Shapes: freehand ``ink``, ``highlight`` rectangle, text ``note``, ``arrow``. Coordinates are
normalised to the page (0..1, origin top-left) so they survive any zoom or image width. An
annotation belongs to one version: a new version starts clean, the old ones keep theirs.
Only the author edits or deletes an annotation.
"""

from __future__ import annotations

import builtins
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .bus import Bus
from .calendar import new_id, topic
from .clock import utcnow
from .errors import Forbidden, Invalid, NotFound
from .models import Principal
from .store.db import Database
from .store.tables_documents import annotations as annotation_rows
from .text import clean_text

LAYERS = ("private", "shared")
KINDS = ("ink", "highlight", "note", "arrow")
MAX_STROKES = 200
MAX_POINTS = 5000
MAX_NOTE_CHARS = 4000
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLORS = {"ink": "#d32f2f", "highlight": "#ffeb3b", "arrow": "#d32f2f", "note": "#ffc107"}


@dataclass(frozen=True)
class Annotation:
    id: int
    document_id: int
    version: int
    page: int
    layer: str
    kind: str
    data: dict[str, Any]
    author_key: str
    author_label: str
    created_at: datetime
    updated_at: datetime | None


def author_key(principal: Principal) -> str:
    """Who owns a private layer: a user account, or a bridge-point device."""
    if principal.user is not None:
        return f"user:{principal.user.id}"
    if principal.point is not None:
        return f"point:{principal.point.id}"
    raise Forbidden("only a user or a bridge point can annotate", code="forbidden")


def _field_error(name: str, what: str) -> Invalid:
    return Invalid(f"data.{name}: {what}", code="invalid_field", details={"field": f"data.{name}"})


def _unit(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise _field_error(name, "coordinates are numbers from 0 to 1")
    return round(float(value), 5)


def _point(value: Any, name: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 2:
        raise _field_error(name, "a point is [x, y]")
    return [_unit(value[0], name), _unit(value[1], name)]


def _color(data: dict[str, Any], kind: str) -> str:
    value = data.get("color", DEFAULT_COLORS[kind])
    if not isinstance(value, str) or not _COLOR.match(value):
        raise _field_error("color", "a colour is #rrggbb")
    return value.lower()


def _width(data: dict[str, Any]) -> float:
    value = data.get("width", 2)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 50:
        raise _field_error("width", "a line width from 0.1 to 50 points")
    return float(value)


def validate_data(kind: str, data: Any) -> dict[str, Any]:
    """The checked, normalised ``data`` of an annotation of ``kind``."""
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}", code="invalid_field", details={"field": "kind"})
    if not isinstance(data, dict):
        raise Invalid("data: expected an object", code="invalid_field", details={"field": "data"})
    if kind == "ink":
        strokes = data.get("strokes")
        if not isinstance(strokes, list) or not strokes or len(strokes) > MAX_STROKES:
            raise _field_error("strokes", f"1 to {MAX_STROKES} strokes of points")
        total = sum(len(s) if isinstance(s, list) else 0 for s in strokes)
        if total > MAX_POINTS:
            raise _field_error("strokes", f"at most {MAX_POINTS} points")
        clean = []
        for stroke in strokes:
            if not isinstance(stroke, list) or not stroke:
                raise _field_error("strokes", "each stroke is a list of [x, y] points")
            clean.append([_point(p, "strokes") for p in stroke])
        return {"strokes": clean, "color": _color(data, kind), "width": _width(data)}
    if kind == "highlight":
        rect = data.get("rect")
        if not isinstance(rect, list) or len(rect) != 4:
            raise _field_error("rect", "a rectangle is [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (_unit(v, "rect") for v in rect)
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            raise _field_error("rect", "the rectangle is empty")
        return {"rect": [x0, y0, x1, y1], "color": _color(data, kind)}
    if kind == "note":
        text = data.get("text")
        if not isinstance(text, str) or not clean_text(text) or len(text) > MAX_NOTE_CHARS:
            raise _field_error("text", f"1 to {MAX_NOTE_CHARS} characters")
        return {"at": _point(data.get("at"), "at"), "text": clean_text(text)}
    start, end = _point(data.get("from"), "from"), _point(data.get("to"), "to")
    if start == end:
        raise _field_error("to", "an arrow needs two different points")
    return {"from": start, "to": end, "color": _color(data, kind), "width": _width(data)}


def _row(row: Any) -> Annotation:
    return Annotation(row.id, row.document_id, row.version, row.page, row.layer, row.kind, dict(row.data),
                      row.author_key, row.author_label, row.created_at, row.updated_at)


class AnnotationBook:
    """Stores annotations; the caller (``server/``) has checked the document's access, the
    layer's permission and the page range."""

    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def create(self, *, meeting_id: int, document_id: int, version: int, page: int, layer: str,
                     kind: str, data: Any, author: Principal) -> Annotation:
        if layer not in LAYERS:
            raise Invalid("layer: private or shared", code="invalid_field", details={"field": "layer"})
        clean = validate_data(kind, data)
        async with self.db.transaction() as conn:
            result = await conn.execute(annotation_rows.insert().values(
                document_id=document_id, version=version, page=page, layer=layer, kind=kind, data=clean,
                author_key=author_key(author), author_label=author.label[:255], created_at=utcnow()))
            annotation_id = new_id(result)
        annotation = await self.get(annotation_id)
        await self._announce(meeting_id, annotation)
        return annotation

    async def get(self, annotation_id: int) -> Annotation:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(annotation_rows).where(annotation_rows.c.id == annotation_id))).first()
        if row is None:
            raise NotFound("no such annotation", code="not_found", details={"annotation_id": annotation_id})
        return _row(row)

    async def get_own(self, annotation_id: int, author: Principal) -> Annotation:
        """The annotation if ``author`` wrote it; someone else's private one is not found, a
        shared one by someone else is forbidden."""
        annotation = await self.get(annotation_id)
        if annotation.author_key != author_key(author):
            if annotation.layer == "private":
                raise NotFound("no such annotation", code="not_found", details={"annotation_id": annotation_id})
            raise Forbidden("only the author may change this annotation", code="forbidden")
        return annotation

    async def visible(self, document_id: int, version: int, viewer: Principal | None,
                      layers: tuple[str, ...] = LAYERS) -> builtins.list[Annotation]:
        """The viewer's private layer and the shared layer, oldest first."""
        conditions = []
        if "shared" in layers:
            conditions.append(annotation_rows.c.layer == "shared")
        if "private" in layers and viewer is not None:
            conditions.append(sa.and_(annotation_rows.c.layer == "private",
                                      annotation_rows.c.author_key == author_key(viewer)))
        if not conditions:
            return []
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(annotation_rows).where(
                annotation_rows.c.document_id == document_id, annotation_rows.c.version == version,
                sa.or_(*conditions)).order_by(annotation_rows.c.id))).all()
        return [_row(r) for r in rows]

    async def update(self, meeting_id: int, annotation: Annotation, data: Any) -> Annotation:
        clean = validate_data(annotation.kind, data)
        async with self.db.transaction() as conn:
            await conn.execute(annotation_rows.update().where(annotation_rows.c.id == annotation.id).values(
                data=clean, updated_at=utcnow()))
        updated = await self.get(annotation.id)
        await self._announce(meeting_id, updated)
        return updated

    async def delete(self, meeting_id: int, annotation: Annotation) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(annotation_rows.delete().where(annotation_rows.c.id == annotation.id))
        await self._announce(meeting_id, annotation, deleted=True)

    async def _announce(self, meeting_id: int, annotation: Annotation, *, deleted: bool = False) -> None:
        if annotation.layer != "shared":  # private annotations never leave their author
            return
        event: dict[str, Any] = {"type": "annotation.shared", "document_id": annotation.document_id,
                                 "version": annotation.version, "annotation_id": annotation.id}
        if deleted:
            event["deleted"] = True
        await self.bus.publish(topic(meeting_id), event)
