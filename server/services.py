"""The long-lived services one server node owns, started and closed in order."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from meetings.accounts import Accounts
from meetings.agenda import AgendaBook
from meetings.annotations import AnnotationBook
from meetings.attendance import Attendance, LivePresence
from meetings.audit import AuditLog
from meetings.bus import Bus, MemoryBus
from meetings.calendar import MeetingCalendar
from meetings.documents import DocumentLimits, PageRenderer
from meetings.floor import FloorControl
from meetings.library import DocumentLibrary
from meetings.minutes import MinutesService
from meetings.presenter import PresenterDesk
from meetings.registry import Registry
from meetings.store.db import Database
from meetings.store.files import FileStore
from meetings.votes import Votes

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


def document_limits(config: Config) -> DocumentLimits:
    """The document engine's limits from the ``documents`` config section."""
    c = config.documents
    return DocumentLimits(
        max_bytes=c.max_bytes, max_pages=c.max_pages, max_page_pt=c.max_page_pt,
        view_width_px=c.view_width_px, thumb_width_px=c.thumb_width_px,
        max_pixels=max(16_000_000, c.view_width_px ** 2), image_quality=c.image_quality,
        render_timeout_s=c.render_timeout_s, probe_timeout_s=c.probe_timeout_s,
        worker_memory_bytes=c.worker_memory_mb * 1024 * 1024,
        worker_store_soft_bytes=min(400 * 1024 * 1024, c.worker_memory_mb * 1024 * 1024 // 2),
    )


def render_cache_dir(config: Config) -> Path:
    if config.documents.cache_dir:
        return Path(config.documents.cache_dir).expanduser().resolve()
    return config.data_path / "render"


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
    # meeting conduct: floor, attendance, votes, minutes. ``presence`` answers "who is in
    # meeting M now"; the WS hub attaches its presence store to it at start.
    presence: LivePresence
    floor: FloorControl
    attendance: Attendance
    votes: Votes
    minutes: MinutesService
    # paperless documents: the renderer's worker processes start on first use (about 0.3 s),
    # so a node that never sees a document never spawns them
    renderer: PageRenderer
    library: DocumentLibrary
    agenda: AgendaBook
    annotations: AnnotationBook
    presenter: PresenterDesk

    @classmethod
    async def start(cls, config: Config) -> Services:
        data = config.data_path
        data.mkdir(parents=True, exist_ok=True)
        limits = document_limits(config)  # before anything opens: a bad value raises here
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
        files = FileStore(Path(data) / "files")
        renderer = PageRenderer(render_cache_dir(config), limits,
                                workers=config.documents.workers)
        presence = LivePresence()
        floor = FloorControl(db, bus)
        attendance = Attendance(db, bus, presence)
        votes = Votes(db, bus, attendance)
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
            presence=presence,
            floor=floor,
            attendance=attendance,
            votes=votes,
            minutes=MinutesService(db, bus, files, floor=floor,
                                   attendance=attendance, votes=votes),
            renderer=renderer,
            library=DocumentLibrary(db, bus, files, renderer),
            agenda=AgendaBook(db, bus),
            annotations=AnnotationBook(db, bus),
            presenter=PresenterDesk(db, bus),
        )

    async def close(self) -> None:
        """Close in reverse order of start; safe to call twice. Shutdown never hangs: each
        step gets ``server.shutdown_timeout_s``; one that overruns is cancelled and logged
        with the stacks of the tasks still running, and the next step goes on."""
        timeout = self.config.server.shutdown_timeout_s
        for name, step in (("document library", self.library.close), ("page renderer", self.renderer.close),
                           ("bus", self.bus.close), ("database", self.db.close)):
            await bounded_close(name, step(), timeout)


async def bounded_close(name: str, closing: Awaitable[None], timeout: float) -> None:
    try:
        await asyncio.wait_for(closing, timeout)
    except TimeoutError:
        log.error("closing the %s took longer than %.1f s; cancelled. Tasks still running:\n%s",
                  name, timeout, "\n".join(_task_stacks()))
    except Exception:
        log.exception("closing the %s failed", name)


def _task_stacks() -> list[str]:
    lines = []
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=8)
        where = " <- ".join(f"{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno} {f.f_code.co_name}"
                            for f in frames)
        lines.append(f"  {task.get_name()}: {where}")
    return lines
