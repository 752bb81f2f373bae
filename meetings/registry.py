"""The bridge-point registry (danh mục điểm cầu): province → district → commune."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .clock import utcnow
from .credentials import hash_token, new_token
from .errors import Conflict, Invalid, NotFound, Unauthenticated
from .models import BridgePoint, IssuedToken, PointLevel, PointNode
from .point_import import ImportRejected, PointRow, RowError, read_points_file, validate_row
from .store.db import Database
from .store.tables import bridge_points, point_tokens
from .text import clean_line, fold

_parent = bridge_points.alias("parent")
_SELECT = sa.select(bridge_points, _parent.c.code.label("parent_code")).outerjoin(
    _parent, _parent.c.id == bridge_points.c.parent_id
)


def new_id(result: Any) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _point(row: Any) -> BridgePoint:
    return BridgePoint(
        id=row.id, code=row.code, name=row.name, level=PointLevel(row.level),
        parent_id=row.parent_id, enabled=row.enabled, created_at=row.created_at,
        parent_code=row.parent_code,
    )


def _check_parent(level: PointLevel, parent_level: PointLevel | None) -> str | None:
    """Why this parent is wrong for this level, or None."""
    if level is PointLevel.PROVINCE:
        return "a province has no parent" if parent_level is not None else None
    if parent_level is None:
        return f"a {level.value} needs a parent code"
    if parent_level.rank != level.rank - 1:
        wanted = "province" if level is PointLevel.DISTRICT else "district"
        return f"the parent of a {level.value} must be a {wanted}, not a {parent_level.value}"
    return None


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


@dataclass(frozen=True)
class DeviceToken:
    """A device token of a point's hall PC, as listed to admins (the secret is never kept)."""

    id: int
    point_id: int
    label: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, *, level: PointLevel | None = None, enabled_only: bool = False,
                   query: str | None = None, enabled: bool | None = None) -> list[BridgePoint]:
        """Points ordered by code. ``query`` matches the name without diacritics
        ("dong lai" finds "Đông Lai") or a part of the code."""
        stmt = _SELECT.order_by(bridge_points.c.code)
        if level is not None:
            stmt = stmt.where(bridge_points.c.level == level.value)
        if enabled_only:
            enabled = True
        if enabled is not None:
            stmt = stmt.where(bridge_points.c.enabled.is_(enabled))
        if query and query.strip():
            stmt = stmt.where(
                bridge_points.c.name_folded.contains(fold(query), autoescape=True)
                | bridge_points.c.code.contains(query.strip(), autoescape=True)
            )
        async with self.db.connect() as conn:
            return [_point(r) for r in (await conn.execute(stmt)).all()]

    async def get(self, point_id: int) -> BridgePoint:
        async with self.db.connect() as conn:
            row = (await conn.execute(_SELECT.where(bridge_points.c.id == point_id))).first()
        if row is None:
            raise NotFound(f"no bridge point {point_id}", code="point_not_found")
        return _point(row)

    async def by_code(self, code: str) -> BridgePoint:
        async with self.db.connect() as conn:
            row = (await conn.execute(_SELECT.where(bridge_points.c.code == code))).first()
        if row is None:
            raise NotFound(f"no bridge point with code {code!r}", code="point_not_found")
        return _point(row)

    async def tree(self) -> builtins.list[PointNode]:
        """Roots (provinces, and any orphan) with their children, ordered by code."""
        points = await self.list()
        nodes = {p.id: PointNode(p) for p in points}
        roots: list[PointNode] = []
        for p in points:
            parent = nodes.get(p.parent_id) if p.parent_id else None
            (parent.children if parent else roots).append(nodes[p.id])
        return roots

    async def descendants(self, point_id: int) -> builtins.list[BridgePoint]:
        points = await self.list()
        children: dict[int | None, list[BridgePoint]] = {}
        for p in points:
            children.setdefault(p.parent_id, []).append(p)
        out: list[BridgePoint] = []
        stack = list(children.get(point_id, []))
        while stack:
            p = stack.pop()
            out.append(p)
            stack.extend(children.get(p.id, []))
        return sorted(out, key=lambda p: p.code)

    async def create(self, code: str, name: str, level: PointLevel | str, parent_code: str | None = None) -> BridgePoint:
        """Register one point; :class:`Conflict` when the code is taken, :class:`Invalid`
        when a field or the parent is wrong."""
        errors: list[RowError] = []
        row = validate_row(1, {"code": code, "name": name, "level": str(getattr(level, "value", level)),
                               "parent": parent_code}, errors)
        if row is None:
            raise Invalid(errors[0].message, code="invalid_point", details={"errors": [e.message for e in errors]})
        try:
            await self.import_rows([row])
        except ImportRejected as exc:
            first = exc.errors[0].message
            if any("already registered" in e.message for e in exc.errors):
                raise Conflict(f"code {row.code!r} is already registered", code="duplicate_code") from None
            raise Invalid(first, code="invalid_parent") from None
        return await self.by_code(row.code)

    async def import_file(self, filename: str, data: bytes, *, update: bool = False,
                          content_type: str = "") -> ImportResult:
        """Import a CSV or YAML file: every row or none. Errors of the file itself (bad levels,
        empty names) and against the registry (taken codes, wrong parents) come together."""
        parsed = read_points_file(filename, data, content_type)
        return await self.import_rows(parsed.rows, update=update, errors=parsed.errors)

    def _check_rows(self, rows: builtins.list[PointRow], existing: dict[str, Any], *,
                    update: bool) -> builtins.list[RowError]:
        errors: list[RowError] = []
        seen: dict[str, int] = {}
        for r in rows:
            if r.code in seen:
                errors.append(RowError(r.row, f"duplicate code {r.code!r} (also on row {seen[r.code]})"))
            else:
                seen[r.code] = r.row
        levels = {code: PointLevel(row.level) for code, row in existing.items()}
        levels.update({r.code: r.level for r in rows})
        for r in rows:
            if r.code in existing and not update:
                errors.append(RowError(r.row, f"code {r.code!r} is already registered"))
            if r.parent_code is not None and r.parent_code not in levels:
                errors.append(RowError(r.row, f"parent code {r.parent_code!r} is not in the file nor registered"))
                continue
            why = _check_parent(r.level, levels.get(r.parent_code) if r.parent_code else None)
            if why:
                errors.append(RowError(r.row, why))
        if update:
            # A level changed by the file must still fit the registered children it keeps.
            changed = {r.code: r for r in rows if r.code in existing and PointLevel(existing[r.code].level) is not r.level}
            codes_by_id = {row.id: code for code, row in existing.items()}
            for code, row in existing.items():
                parent = codes_by_id.get(row.parent_id) if row.parent_id else None
                if code in seen or parent not in changed:
                    continue
                why = _check_parent(PointLevel(row.level), changed[parent].level)
                if why:
                    errors.append(RowError(changed[parent].row, f"registered point {code!r} is under {parent!r}: {why}"))
        return errors

    async def import_rows(self, rows: builtins.list[PointRow], *, update: bool = False,
                          errors: builtins.list[RowError] | tuple[RowError, ...] = ()) -> ImportResult:
        """Import every row or none: all errors (with ``errors`` found while reading the file)
        are collected with their row numbers and raised together as :class:`ImportRejected`."""
        async with self.db.transaction() as conn:
            existing = {row.code: row for row in (await conn.execute(sa.select(bridge_points))).all()}
            found = [*errors, *self._check_rows(rows, existing, update=update)]
            if found:
                raise ImportRejected(sorted(found, key=lambda e: e.row))
            if not rows:
                raise ImportRejected([RowError(1, "the file holds no bridge points")])
            ids = {code: row.id for code, row in existing.items()}
            created = updated = 0
            now = utcnow()
            for r in sorted(rows, key=lambda r: r.level.rank):
                values = dict(name=r.name, name_folded=fold(r.name), level=r.level.value,
                              parent_id=ids[r.parent_code] if r.parent_code else None)
                if r.code in existing:
                    await conn.execute(bridge_points.update().where(bridge_points.c.code == r.code).values(**values))
                    updated += 1
                else:
                    try:
                        result = await conn.execute(
                            bridge_points.insert().values(code=r.code, enabled=True, created_at=now, **values)
                        )
                    except IntegrityError:  # a concurrent import took the code
                        raise ImportRejected([RowError(r.row, f"code {r.code!r} is already registered")]) from None
                    ids[r.code] = new_id(result)
                    created += 1
        return ImportResult(created=created, updated=updated)

    async def set_enabled(self, point_id: int, enabled: bool) -> BridgePoint:
        async with self.db.transaction() as conn:
            result = await conn.execute(bridge_points.update().where(bridge_points.c.id == point_id).values(enabled=enabled))
        if result.rowcount == 0:
            raise NotFound(f"no bridge point {point_id}", code="point_not_found")
        return await self.get(point_id)

    async def issue_token(self, point_id: int, *, label: str = "") -> IssuedToken:
        """A new device token for a hall PC; shown once, stored hashed."""
        await self.get(point_id)
        token = new_token("dcp")
        async with self.db.transaction() as conn:
            await conn.execute(point_tokens.insert().values(
                point_id=point_id, token_hash=hash_token(token), label=clean_line(label)[:255], created_at=utcnow(),
            ))
        return IssuedToken(token)

    async def list_tokens(self, point_id: int) -> builtins.list[DeviceToken]:
        await self.get(point_id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(
                sa.select(point_tokens).where(point_tokens.c.point_id == point_id).order_by(point_tokens.c.id)
            )).all()
        return [DeviceToken(r.id, r.point_id, r.label, r.created_at, r.revoked_at, r.last_used_at) for r in rows]

    async def revoke_tokens(self, point_id: int) -> int:
        """Revoke every device token of the point; returns how many were active."""
        await self.get(point_id)
        async with self.db.transaction() as conn:
            result = await conn.execute(
                point_tokens.update().where(point_tokens.c.point_id == point_id, point_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return result.rowcount or 0

    async def resolve_token(self, token: str) -> BridgePoint:
        async with self.db.transaction() as conn:
            row = (await conn.execute(
                sa.select(point_tokens.c.id, point_tokens.c.revoked_at, point_tokens.c.point_id)
                .where(point_tokens.c.token_hash == hash_token(token))
            )).first()
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("unknown or revoked device token", code="invalid_token")
            await conn.execute(point_tokens.update().where(point_tokens.c.id == row.id).values(last_used_at=utcnow()))
        point = await self.get(row.point_id)
        if not point.enabled:
            raise Unauthenticated("this bridge point is disabled", code="point_disabled")
        return point
