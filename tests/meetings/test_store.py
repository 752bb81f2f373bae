"""The SQL store: migrations, SQLite WAL, upgrade in place, and the same code on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from meetings.accounts import Accounts
from meetings.bus import MemoryBus
from meetings.calendar import InviteSelection, MeetingCalendar, MeetingDraft
from meetings.clock import utcnow
from meetings.registry import Registry
from meetings.store import migrate
from meetings.store.db import Database
from meetings.store.tables import metadata


def _diff(conn: sa.Connection) -> list:
    return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


async def test_migrations_build_exactly_the_declared_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}")
    try:
        applied = await db.migrate()
        assert applied == [migrate.head_revision()] or applied[-1] == migrate.head_revision()
        async with db.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(migrate.current_revision) == migrate.head_revision()
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            assert mode == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await db.close()


async def test_upgrade_in_place_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.sqlite3'}"
    db = Database(url)
    await db.migrate()
    registry = Registry(db)
    await registry.create("T08", "Tỉnh Tuyên Quang", "province")
    await db.close()
    # A second start (a newer release) migrates the existing data dir and keeps everything.
    db = Database(url)
    try:
        assert await db.migrate() == []
        assert (await Registry(db).by_code("T08")).name == "Tỉnh Tuyên Quang"
    finally:
        await db.close()


async def test_stored_datetimes_come_back_aware_and_exact(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}")
    await db.migrate()
    try:
        calendar = MeetingCalendar(db, MemoryBus(), Registry(db))
        start = utcnow() + timedelta(days=1)
        meeting = await calendar.create(MeetingDraft("Họp giao ban", start), created_by=None)
        assert meeting.starts_at == start and meeting.starts_at.tzinfo is not None
    finally:
        await db.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, when DIEMCAU_TEST_POSTGRES_URL names a server."""
    base = os.environ.get("DIEMCAU_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set DIEMCAU_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1/postgres)")
    name = f"diemcau_test_{uuid.uuid4().hex[:10]}"
    admin = Database(base)
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield str(sa.make_url(base).set(database=name).render_as_string(hide_password=False))
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.postgres
async def test_same_code_runs_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        await db.migrate()
        async with db.connect() as conn:
            assert await conn.run_sync(_diff) == []
        registry = Registry(db)
        await registry.create("T08", "Tỉnh Tuyên Quang", "province")
        await registry.create("H01", "Huyện Yên Sơn", "district", "T08")
        await registry.create("X01", "Xã Đội Bình", "commune", "H01")
        assert [p.code for p in await registry.list(query="doi binh")] == ["X01"]
        accounts = Accounts(db)
        user = await accounts.create_user("thuky", "mat-khau-dai-du", "secretary")
        token, _ = await accounts.open_session(user)
        assert (await accounts.resolve_session(token.token))[0].id == user.id
        calendar = MeetingCalendar(db, MemoryBus(), registry)
        meeting = await calendar.create(MeetingDraft("Hội nghị trực tuyến", utcnow()), created_by=user.id)
        result = await calendar.invite(meeting.id, InviteSelection(under="T08"))
        assert sorted(p.code for p in result.invited) == ["H01", "T08", "X01"]  # "under" includes itself
        assert (await calendar.get(meeting.id)).starts_at.tzinfo is not None
    finally:
        await db.close()
