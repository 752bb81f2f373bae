"""Meeting recordings (ghi hình / ghi âm): the record of each recording of a meeting.

The recorder itself is media (``media/recorder.py``, driven by ``server/recording_service.py``);
this module only keeps the facts: one row per recording, ``recording`` while it runs, then
exactly one final status. Starting and stopping are audited (``recording.start`` /
``recording.stop``) and announced to the whole meeting (``recording.started`` /
``recording.stopped`` on ``meeting.<id>``), so every participant sees that it is being recorded.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from .audit import record
from .bus import Bus
from .calendar import new_id, topic
from .clock import isoformat, utcnow
from .errors import Conflict, NotFound
from .models import Principal
from .store.db import Database
from .store.tables_recordings import recordings

RUNNING, COMPLETED, FAILED, INTERRUPTED = "recording", "completed", "failed", "interrupted"
FINAL = (COMPLETED, FAILED, INTERRUPTED)


@dataclass(frozen=True)
class Recording:
    id: int
    meeting_id: int
    status: str
    file_name: str
    started_at: datetime
    stopped_at: datetime | None
    duration_s: float | None
    size_bytes: int | None
    started_by: str
    stop_reason: str
    width: int
    height: int
    fps: int

    @property
    def running(self) -> bool:
        return self.status == RUNNING


def _row(r: sa.Row) -> Recording:
    return Recording(r.id, r.meeting_id, r.status, r.file_name, r.started_at, r.stopped_at,
                     r.duration_s, r.size_bytes, r.started_by, r.stop_reason, r.width, r.height, r.fps)


def event(kind: str, rec: Recording) -> dict[str, object]:
    """The bus event telling a meeting that a recording started or stopped (no file names)."""
    return {"type": kind, "meeting_id": rec.meeting_id, "recording_id": rec.id,
            "status": rec.status, "started_at": isoformat(rec.started_at),
            "stopped_at": isoformat(rec.stopped_at) if rec.stopped_at else None}


class Recordings:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def list(self, meeting_id: int) -> list[Recording]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(recordings).where(recordings.c.meeting_id == meeting_id)
                                       .order_by(recordings.c.id))).all()
        return [_row(r) for r in rows]

    async def get(self, recording_id: int) -> Recording:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(recordings).where(recordings.c.id == recording_id))).first()
        if row is None:
            raise NotFound(f"no recording {recording_id}", code="recording_not_found")
        return _row(row)

    async def running(self, meeting_id: int) -> Recording | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(recordings).where(
                recordings.c.meeting_id == meeting_id, recordings.c.status == RUNNING))).first()
        return _row(row) if row is not None else None

    async def begin(self, meeting_id: int, actor: Principal, *, width: int, height: int,
                    fps: int, node: str = "", announce: bool = True) -> Recording:
        """A new ``recording`` row; Conflict ``recording_running`` if one already runs.
        ``announce=False``: the caller publishes ``recording.started`` (:meth:`announce`) once
        the recorder really runs."""
        now = utcnow()
        async with self.db.transaction() as conn:
            busy = (await conn.execute(sa.select(recordings.c.id).where(
                recordings.c.meeting_id == meeting_id, recordings.c.status == RUNNING))).first()
            if busy is not None:
                raise Conflict("a recording of this meeting is already running", code="recording_running",
                               details={"recording_id": busy.id})
            rid = new_id(await conn.execute(recordings.insert().values(
                meeting_id=meeting_id, status=RUNNING, file_name="", started_at=now,
                started_by=actor.label[:255], stop_reason="", width=width, height=height, fps=fps,
                node=node[:255])))
            # no user text in file names (the title goes into the file's metadata)
            await conn.execute(recordings.update().where(recordings.c.id == rid)
                               .values(file_name=f"hop-{meeting_id}-{int(rid)}.webm"))
            await record(conn, actor, "recording.start", meeting_id=meeting_id, target=str(rid),
                         details={"width": width, "height": height, "fps": fps})
        rec = await self.get(int(rid))
        if announce:
            await self.announce(rec)
        return rec

    async def announce(self, rec: Recording) -> None:
        await self.bus.publish(topic(rec.meeting_id), event("recording.started", rec))

    async def finish(self, recording_id: int, actor: Principal | None, *, status: str, reason: str,
                     duration_s: float | None = None, size_bytes: int | None = None) -> Recording:
        """Give a running recording its final status (once); Conflict ``recording_not_running``."""
        assert status in FINAL
        async with self.db.transaction() as conn:
            row = (await conn.execute(sa.select(recordings).where(recordings.c.id == recording_id))).first()
            if row is None:
                raise NotFound(f"no recording {recording_id}", code="recording_not_found")
            if row.status != RUNNING:
                raise Conflict(f"recording {recording_id} is already {row.status}", code="recording_not_running")
            await conn.execute(recordings.update().where(recordings.c.id == recording_id).values(
                status=status, stopped_at=utcnow(), stop_reason=reason[:32], duration_s=duration_s,
                size_bytes=size_bytes))
            await record(conn, actor, "recording.stop", meeting_id=row.meeting_id, target=str(recording_id),
                         details={"status": status, "reason": reason, "duration_s": duration_s})
        rec = await self.get(recording_id)
        await self.bus.publish(topic(rec.meeting_id), event("recording.stopped", rec))
        return rec

    async def interrupt_all(self, node: str = "") -> builtins.list[Recording]:
        """At start: recordings a previous run of this ``node`` left ``recording`` become
        ``interrupted`` (other nodes' running recordings are theirs)."""
        async with self.db.connect() as conn:
            ids = [r.id for r in (await conn.execute(sa.select(recordings.c.id).where(
                recordings.c.status == RUNNING, recordings.c.node == node[:255]))).all()]
        done = []
        for rid in ids:
            try:
                done.append(await self.finish(rid, None, status=INTERRUPTED, reason="server_restart"))
            except Conflict:
                continue
        return done
