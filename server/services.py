"""The long-lived services one server node owns, started and closed in order."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from meetings.accounts import Accounts
from meetings.audit import AuditLog
from meetings.bus import Bus, MemoryBus
from meetings.calendar import MeetingCalendar
from meetings.registry import Registry
from meetings.store.db import Database
from meetings.store.files import FileStore

from .config import Config

log = logging.getLogger(__name__)


def load_secret(config: Config) -> bytes:
    """``auth.secret_key``, or a key generated once into ``<data_dir>/secret.key`` (0600)."""
    if config.auth.secret_key:
        return config.auth.secret_key.encode("utf-8")
    path = config.data_path / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_urlsafe(48), encoding="ascii")
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text(encoding="ascii").strip().encode("ascii")


def make_bus(config: Config) -> Bus:
    if config.bus.backend == "redis":
        from .bus.redis_bus import RedisBus

        return RedisBus(config.bus.redis_url, prefix=config.bus.channel_prefix)
    return MemoryBus()


@dataclass
class Services:
    config: Config
    db: Database
    bus: Bus
    files: FileStore
    accounts: Accounts
    registry: Registry
    calendar: MeetingCalendar
    audit: AuditLog
    secret: bytes

    @classmethod
    async def start(cls, config: Config) -> Services:
        data = config.data_path
        data.mkdir(parents=True, exist_ok=True)
        db = Database(config.database_url, pool_size=config.store.pool_size)
        try:
            applied = await db.migrate()
            if applied:
                log.info("database migrated: %s", ", ".join(applied))
            bus = make_bus(config)
            await bus.start()
        except BaseException:
            await db.close()
            raise
        registry = Registry(db)
        return cls(
            config=config,
            db=db,
            bus=bus,
            files=FileStore(Path(data) / "files"),
            accounts=Accounts(
                db,
                password_min_length=config.auth.password_min_length,
                session_ttl=timedelta(hours=config.auth.session_ttl_hours),
            ),
            registry=registry,
            calendar=MeetingCalendar(db, bus, registry, invitation_ttl=timedelta(days=config.auth.invitation_ttl_days)),
            audit=AuditLog(db),
            secret=load_secret(config),
        )

    async def close(self) -> None:
        """Close in reverse order of start; safe to call twice."""
        try:
            await self.bus.close()
        finally:
            await self.db.close()
