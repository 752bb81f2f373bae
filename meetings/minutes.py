"""Minutes (biên bản cuộc họp): a draft built from the record, rendered to PDF, versioned.

The record is read from the meeting itself: its data, chair and secretary, attendance per
point, the agenda (documents feature, when installed), the speakers in order, the vote
results, and the conclusions (kết luận) the secretary writes. Every generation is a new
version (1, 2, …) stored content-addressed in the file store.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .attendance import Attendance, PointAttendance
from .audit import record
from .bus import Bus
from .calendar import topic
from .clock import utcnow
from .errors import Invalid, NotFound
from .floor import FloorControl, Turn
from .models import Principal
from .store.db import Database
from .store.files import FileStore
from .store.tables import bridge_points, meetings, users
from .store.tables_conduct import minutes_drafts, minutes_versions
from .text import clean_line, clean_text
from .votes import VoteResult, Votes

MAX_CONCLUSIONS = 50000


@dataclass(frozen=True)
class AgendaEntry:
    title: str
    presenter: str
    id: int | None = None


@dataclass(frozen=True)
class RecordingLine:
    """One recording the minutes mention: start, stop, duration."""

    id: int
    started_at: datetime
    stopped_at: datetime | None
    duration_s: float | None


async def read_recordings(conn: AsyncConnection, meeting_id: int) -> tuple[RecordingLine, ...]:
    """Completed recordings of the meeting (recordings feature); empty without it."""
    try:
        from .store.tables_recordings import recordings
    except ImportError:
        return ()
    rows = (await conn.execute(sa.select(recordings).where(
        recordings.c.meeting_id == meeting_id, recordings.c.status == "completed")
        .order_by(recordings.c.id))).all()
    return tuple(RecordingLine(r.id, r.started_at, r.stopped_at, r.duration_s) for r in rows)


@dataclass(frozen=True)
class MinutesRecord:
    """Everything the minutes show, already read from the store (NFC text)."""

    meeting_id: int
    title: str
    description: str
    starts_at: datetime
    ended_at: datetime | None
    host_name: str
    chair_name: str
    secretary_name: str
    issuer: str
    number: str
    place: str
    attendance: list[PointAttendance]
    agenda: list[AgendaEntry]
    turns: list[Turn]
    votes: list[VoteResult]
    conclusions: str
    version: int
    recordings: tuple[RecordingLine, ...] = ()
    "Recordings of the meeting (ghi hình) that produced a file, in order."


@dataclass(frozen=True)
class MinutesVersion:
    version: int
    generated_at: datetime
    generated_by: str
    pages: int
    sha256: str
    size: int


def issuer_for(host_name: str) -> str:
    """The issuing body from the host point: "Tỉnh Tuyên Quang" → "ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG"."""
    name = clean_line(host_name)
    if not name:
        return "ỦY BAN NHÂN DÂN"
    if name.upper().startswith(("UBND", "ỦY BAN", "UỶ BAN", "SỞ", "VĂN PHÒNG")):
        return name.upper()
    return f"ỦY BAN NHÂN DÂN {name.upper()}"


def place_for(host_name: str) -> str:
    """The place name of the date line: the host point's name without its level word."""
    name = clean_line(host_name)
    for prefix in ("Thành phố ", "Tỉnh ", "Huyện ", "Quận ", "Thị xã ", "Xã ", "Phường ", "Thị trấn "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


async def read_agenda(conn: AsyncConnection, meeting_id: int) -> list[AgendaEntry]:
    """The agenda items (documents feature); empty when that feature is not installed."""
    try:
        from .store.tables_documents import agenda_items
    except ImportError:
        return []
    cols = agenda_items.c
    order = [cols.parent_id.is_not(None), cols.position, cols.id] if "parent_id" in cols else [cols.id]
    query = sa.select(agenda_items).where(cols.meeting_id == meeting_id)
    if "parent_id" in cols:
        query = query.where(cols.parent_id.is_(None))
    rows = (await conn.execute(query.order_by(*order))).all()
    return [AgendaEntry(r.title, getattr(r, "presenter", "") or "", r.id) for r in rows]


class MinutesService:
    def __init__(self, db: Database, bus: Bus, files: FileStore, *, floor: FloorControl,
                 attendance: Attendance, votes: Votes) -> None:
        self.db = db
        self.bus = bus
        self.files = files
        self.floor = floor
        self.attendance = attendance
        self.votes = votes

    async def conclusions(self, meeting_id: int) -> str:
        async with self.db.connect() as conn:
            value = (await conn.execute(sa.select(minutes_drafts.c.conclusions)
                                        .where(minutes_drafts.c.meeting_id == meeting_id))).scalar()
        return str(value or "")

    async def set_conclusions(self, meeting_id: int, actor: Principal, text: str) -> str:
        value = clean_text(text)
        if len(value) > MAX_CONCLUSIONS:
            raise Invalid(f"text: longer than {MAX_CONCLUSIONS} characters", code="invalid_field",
                          details={"field": "text"})
        async with self.db.transaction() as conn:
            done = await conn.execute(minutes_drafts.update().where(minutes_drafts.c.meeting_id == meeting_id)
                                      .values(conclusions=value, updated_at=utcnow()))
            if not done.rowcount:
                await conn.execute(minutes_drafts.insert().values(meeting_id=meeting_id, conclusions=value,
                                                                  updated_at=utcnow()))
            await record(conn, actor, "minutes.conclusions", meeting_id=meeting_id, details={"chars": len(value)})
        return value

    async def versions(self, meeting_id: int) -> list[MinutesVersion]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(minutes_versions).where(minutes_versions.c.meeting_id == meeting_id)
                                       .order_by(minutes_versions.c.version))).all()
        return [MinutesVersion(r.version, r.generated_at, r.generated_by, r.pages, r.sha256, r.size) for r in rows]

    async def pdf(self, meeting_id: int, version: int) -> bytes:
        async with self.db.connect() as conn:
            sha = (await conn.execute(sa.select(minutes_versions.c.sha256).where(
                minutes_versions.c.meeting_id == meeting_id, minutes_versions.c.version == version))).scalar()
        if sha is None or not self.files.exists(sha):
            raise NotFound(f"no minutes version {version}", code="minutes_not_found")
        return await asyncio.to_thread(self.files.path_of(sha).read_bytes)

    async def build(self, meeting_id: int, *, number: str = "", place: str = "", issuer: str = "",
                    version: int = 0) -> MinutesRecord:
        async with self.db.connect() as conn:
            m = (await conn.execute(sa.select(meetings).where(meetings.c.id == meeting_id))).first()
            if m is None:
                raise NotFound(f"no meeting {meeting_id}", code="meeting_not_found")
            names = {r.id: r.display_name or r.username for r in (await conn.execute(
                sa.select(users.c.id, users.c.display_name, users.c.username)
                .where(users.c.id.in_([i for i in (m.chair_id, m.secretary_id) if i])))).all()}
            host = ""
            if m.host_point_id is not None:
                host = (await conn.execute(sa.select(bridge_points.c.name)
                                           .where(bridge_points.c.id == m.host_point_id))).scalar() or ""
            agenda = await read_agenda(conn, meeting_id)
            recorded = await read_recordings(conn, meeting_id)
            conclusions = (await conn.execute(sa.select(minutes_drafts.c.conclusions)
                                              .where(minutes_drafts.c.meeting_id == meeting_id))).scalar() or ""
        sheet = await self.attendance.sheet(meeting_id)
        results = [await self.votes.result(v.id, early=True)
                   for v in await self.votes.list(meeting_id) if v.state != "open"]
        return MinutesRecord(
            meeting_id=meeting_id, title=m.title, description=m.description, starts_at=m.opened_at or m.starts_at,
            ended_at=m.closed_at, host_name=host, chair_name=names.get(m.chair_id, ""),
            secretary_name=names.get(m.secretary_id, ""), issuer=clean_line(issuer) or issuer_for(host),
            number=clean_line(number), place=clean_line(place) or place_for(host), attendance=sheet.points,
            agenda=agenda, turns=await self.floor.turns(meeting_id), votes=results, conclusions=conclusions,
            version=version, recordings=recorded)

    async def generate(self, meeting_id: int, actor: Principal, *, conclusions: str | None = None,
                       number: str = "", place: str = "", issuer: str = "") -> MinutesVersion:
        """Render a new version from the record (saving ``conclusions`` first when given)."""
        from .minutes_pdf import render_minutes  # PyMuPDF loads only when minutes are made

        for name, value in (("number", number), ("place", place), ("issuer", issuer)):
            if len(value) > 200:
                raise Invalid(f"{name}: longer than 200 characters", code="invalid_field", details={"field": name})
        if conclusions is not None:
            await self.set_conclusions(meeting_id, actor, conclusions)
        current = await self.versions(meeting_id)
        version = (current[-1].version if current else 0) + 1
        minutes = await self.build(meeting_id, number=number, place=place, issuer=issuer, version=version)
        data, pages = await asyncio.to_thread(render_minutes, minutes)
        stored = await asyncio.to_thread(self.files.put_bytes, data)
        now = utcnow()
        async with self.db.transaction() as conn:
            top = (await conn.execute(sa.select(sa.func.max(minutes_versions.c.version))
                                      .where(minutes_versions.c.meeting_id == meeting_id))).scalar()
            version = int(top or 0) + 1  # a concurrent generation took the number: take the next
            await conn.execute(minutes_versions.insert().values(
                meeting_id=meeting_id, version=version, generated_at=now, generated_by=actor.label[:255],
                pages=pages, sha256=stored.sha256, size=stored.size))
            await record(conn, actor, "minutes.generate", meeting_id=meeting_id, target=str(version),
                         details={"pages": pages, "sha256": stored.sha256})
        await self.bus.publish(topic(meeting_id), {"type": "minutes.generated", "version": version})
        return MinutesVersion(version, now, actor.label[:255], pages, stored.sha256, stored.size)
