"""The bridge-point registry (danh mục điểm cầu): province → district → commune."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .clock import utcnow
from .credentials import hash_token, new_token
from .errors import Conflict, Invalid, NotFound, Unauthenticated
from .models import BridgePoint, IssuedToken, PointLevel, PointNode
from .point_import import PointRow, RowError, ImportRejected, CODE
from .store.db import Database
from .store.tables import bridge_points, point_tokens
from .text import clean_line, fold

_parent = bridge_points.alias("parent")
_SELECT = sa.select(bridge_points, _parent.c.code.label("parent_code")).outerjoin(
    _parent, _parent.c.id == bridge_points.c.parent_id
)


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


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, *, level: PointLevel | None = None, enabled_only: bool = False,
                   query: str | None = None) -> list[BridgePoint]:
        stmt = _SELECT.order_by(bridge_points.c.code)
        if level is not None:
            stmt = stmt.where(bridge_points.c.level == level.value)
        if enabled_only:
            stmt = stmt.where(bridge_points.c.enabled.is_(True))
        if query:
            stmt = stmt.where(bridge_points.c.name_folded.contains(fold(query)) | bridge_points.c.code.contains(query.strip()))
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

    async def tree(self) -> list[PointNode]:
        """Roots (provinces, and any orphan) with their children, ordered by code."""
        points = await self.list()
        nodes = {p.id: PointNode(p) for p in points}
        roots: list[PointNode] = []
        for p in points:
            parent = nodes.get(p.parent_id) if p.parent_id else None
            (parent.children if parent else roots).append(nodes[p.id])
        return roots

    async def descendants(self, point_id: int) -> list[BridgePoint]:
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
        try:
            level = PointLevel(level)
        except ValueError:
            raise Invalid(f"level must be province, district or commune; got {level!r}", code="invalid_level") from None
        row = PointRow(row=1, code=clean_line(code), name=clean_line(name), level=level,
                       parent_code=clean_line(parent_code) if parent_code else None)
        if not CODE.match(row.code):
            raise Invalid("code may only hold letters, digits, '.', '_' and '-' (max 64)", code="invalid_code")
        if not row.name:
            raise Invalid("name is empty", code="invalid_name")
        try:
            await self.import_rows([row])
        except ImportRejected as exc:
            first = exc.errors[0].message
            code_ = "duplicate_code" if "already registered" in first else "invalid_point"
            raise (Conflict if code_ == "duplicate_code" else Invalid)(first, code=code_) from None
        return await self.by_code(row.code)

    async def import_rows(self, rows: list[PointRow], *, update: bool = False) -> ImportResult:
        """Import every row or none: all errors are collected with their row numbers."""
        errors: list[RowError] = []
        seen: dict[str, int] = {}
        for r in rows:
            if r.code in seen:
                errors.append(RowError(r.row, f"duplicate code {r.code!r} (also on row {seen[r.code]})"))
            else:
                seen[r.code] = r.row
        async with self.db.transaction() as conn:
            existing = {row.code: row for row in (await conn.execute(sa.select(bridge_points))).all()}
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
            if errors:
                raise ImportRejected(sorted(errors, key=lambda e: e.row))
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
                    ids[r.code] = result.inserted_primary_key[0]
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

    async def revoke_tokens(self, point_id: int) -> int:
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
