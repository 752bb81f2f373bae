"""The document library of a meeting (tài liệu họp): upload, versions, access, page text.

An upload has already been streamed into the content-addressed ``FileStore`` by ``server/``;
:meth:`DocumentLibrary.add` probes it in a worker (refusals delete a newly stored file, so
nothing is half-stored), starts rendering at once (page 1 first, in the long-lived pool),
indexes the page text once per SHA-256, then records the document, its version and an audit
entry in one transaction. Rendering goes on in the background, publishing only ids and
counts (``document.progress``, ``document.ready``) on the meeting's topic.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .audit import record
from .bus import Bus
from .calendar import new_id, topic
from .clock import utcnow
from .documents import DocumentInvalid, PageRenderer, PdfInfo
from .documents.text import PageText
from .errors import Invalid, NotFound
from .library_models import Document, DocumentAccess, DocumentVersion, PageBox
from .models import Principal
from .store.db import Database
from .store.files import FileStore, StoredFile
from .store.tables_documents import agenda_items, document_pages, document_versions, documents
from .text import clean_line

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5
REPAIRED_WARNING = "the file was damaged and has been repaired: some pages may be blank"
"""First warning of a version MuPDF had to repair (the API also says ``repaired: true``)."""


@dataclass(frozen=True)
class DocumentDraft:
    """What the secretary gives with an upload."""

    title: str
    agenda_item_id: int | None = None
    access: DocumentAccess = field(default_factory=DocumentAccess)


class DocumentLibrary:
    """Documents of meetings over ``Database`` + ``FileStore`` + ``PageRenderer``."""

    def __init__(self, db: Database, bus: Bus, files: FileStore, renderer: PageRenderer) -> None:
        self.db = db
        self.bus = bus
        self.files = files
        self.renderer = renderer
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def close(self) -> None:
        """Stop background rendering tasks (the renderer is closed by its owner)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- reading ---------------------------------------------------------------------------

    async def get(self, document_id: int) -> Document:
        async with self.db.connect() as conn:
            found = await self._load(conn, [document_id])
        if not found:
            raise NotFound("no such document", code="not_found", details={"document_id": document_id})
        return found[0]

    async def list(self, meeting_id: int) -> builtins.list[Document]:
        async with self.db.connect() as conn:
            ids = list((await conn.execute(sa.select(documents.c.id).where(
                documents.c.meeting_id == meeting_id).order_by(documents.c.id))).scalars())
            return await self._load(conn, ids)

    async def _load(self, conn: AsyncConnection, ids: builtins.list[int]) -> builtins.list[Document]:
        if not ids:
            return []
        rows = (await conn.execute(sa.select(documents).where(documents.c.id.in_(ids))
                                   .order_by(documents.c.id))).all()
        vrows = (await conn.execute(sa.select(document_versions).where(
            document_versions.c.document_id.in_(ids)).order_by(document_versions.c.version))).all()
        versions: dict[int, builtins.list[DocumentVersion]] = {}
        for v in vrows:
            versions.setdefault(v.document_id, []).append(DocumentVersion(
                v.document_id, v.version, v.sha256, v.filename, int(v.size_bytes), v.page_count,
                tuple(PageBox(float(w), float(h)) for w, h in v.pages), tuple(v.warnings or ()),
                v.uploaded_at, v.uploaded_by_label))
        return [Document(r.id, r.meeting_id, r.title, r.agenda_item_id, r.visibility,
                         tuple(r.allowed_roles or ()), tuple(r.allowed_points or ()),
                         r.current_version, tuple(versions.get(r.id, ())), r.created_at)
                for r in rows]

    def rendered_pages(self, version: DocumentVersion) -> int:
        """Pages whose view is in the render cache (or has its placeholder)."""
        folder = self.renderer.cache.kind_dir(version.sha256, "view")
        if not folder.is_dir():
            return 0
        return sum(1 for _ in folder.glob(f"*.{self.renderer.limits.extension}"))

    # -- writing ---------------------------------------------------------------------------

    async def add(self, meeting_id: int, stored: StoredFile, filename: str, draft: DocumentDraft,
                  actor: Principal | None) -> Document:
        """A new document from a stored upload (see the module docstring)."""
        title = clean_line(draft.title)[:500] or clean_line(filename.rsplit(".", 1)[0])[:500] or "Tài liệu"
        if draft.agenda_item_id is not None:
            try:
                await self._check_item(meeting_id, draft.agenda_item_id)
            except BaseException:
                await self.discard_upload(stored)
                raise
        return await self._store(stored, filename, actor, meeting_id=meeting_id, title=title,
                                  draft=draft)

    async def replace(self, document_id: int, stored: StoredFile, filename: str,
                      actor: Principal | None) -> Document:
        """A new version of a document; annotations stay on their old version."""
        document = await self.get(document_id)
        return await self._store(stored, filename, actor, meeting_id=document.meeting_id,
                                 document=document)

    async def _check_item(self, meeting_id: int, item_id: int) -> None:
        async with self.db.connect() as conn:
            found = (await conn.execute(sa.select(agenda_items.c.id).where(
                agenda_items.c.id == item_id, agenda_items.c.meeting_id == meeting_id))).first()
        if found is None:
            raise Invalid("agenda_item_id: no such agenda item in this meeting", code="invalid_field",
                          details={"field": "agenda_item_id"})

    async def _store(self, stored: StoredFile, filename: str, actor: Principal | None, *,
                     meeting_id: int, title: str = "", draft: DocumentDraft | None = None,
                     document: Document | None = None) -> Document:
        try:
            info = await self.renderer.probe(stored.path, sha256=stored.sha256)
        except DocumentInvalid:
            await self.discard_upload(stored)
            raise
        loop = asyncio.get_running_loop()
        ids: asyncio.Future[tuple[int, int]] = loop.create_future()
        task = self._start_rendering(meeting_id, ids, stored, info)
        try:
            texts = await self._index_text(stored)
            document_id, version = await self._insert(meeting_id, stored, filename, info, actor,
                                                      title=title, draft=draft, document=document,
                                                      texts=texts)
        except BaseException:
            task.cancel()
            await self.discard_upload(stored)
            raise
        ids.set_result((document_id, version))
        if document is not None:
            await self.bus.publish(topic(meeting_id), {"type": "document.version",
                                                       "document_id": document_id, "version": version})
        else:
            await self.bus.publish(topic(meeting_id), {"type": "documents.changed"})
        return await self.get(document_id)

    async def discard_upload(self, stored: StoredFile) -> None:
        """Delete a file this upload stored, unless a document version uses that content."""
        if not stored.created:
            return
        async with self.db.connect() as conn:
            used = (await conn.execute(sa.select(document_versions.c.id).where(
                document_versions.c.sha256 == stored.sha256).limit(1))).first()
        if used is None:
            self.files.delete(stored.sha256)

    async def _index_text(self, stored: StoredFile) -> tuple[PageText, ...] | None:
        """Page texts to insert, or None when this content is indexed already."""
        async with self.db.connect() as conn:
            known = (await conn.execute(sa.select(document_pages.c.id).where(
                document_pages.c.sha256 == stored.sha256).limit(1))).first()
        if known is not None:
            return None
        try:
            raw = await self.renderer.page_texts(stored.path)
        except DocumentInvalid as exc:  # text is a help, not a condition: keep the document
            log.warning("text of %s not indexed: %s", stored.sha256[:12], exc)
            return ()
        return tuple(PageText.of(index + 1, text) for index, text in enumerate(raw))

    async def _insert(self, meeting_id: int, stored: StoredFile, filename: str, info: PdfInfo,
                      actor: Principal | None, *, title: str, draft: DocumentDraft | None,
                      document: Document | None, texts: tuple[PageText, ...] | None) -> tuple[int, int]:
        now = utcnow()
        warnings = list(info.warnings)
        if info.repaired:
            warnings.insert(0, REPAIRED_WARNING)
        async with self.db.transaction() as conn:
            if document is None:
                assert draft is not None
                result = await conn.execute(documents.insert().values(
                    meeting_id=meeting_id, agenda_item_id=draft.agenda_item_id, title=title,
                    visibility=draft.access.visibility, allowed_roles=list(draft.access.allowed_roles),
                    allowed_points=list(draft.access.allowed_points), current_version=1,
                    created_by=actor.user.id if actor and actor.user else None, created_at=now))
                document_id, version, action = new_id(result), 1, "document.upload"
            else:
                document_id = document.id
                version = 1 + ((await conn.execute(sa.select(sa.func.max(document_versions.c.version))
                                .where(document_versions.c.document_id == document_id))).scalar_one() or 0)
                await conn.execute(documents.update().where(documents.c.id == document_id).values(
                    current_version=version))
                action = "document.version"
            await conn.execute(document_versions.insert().values(
                document_id=document_id, version=version, sha256=stored.sha256, filename=filename,
                size_bytes=info.size_bytes, page_count=info.page_count,
                pages=[[p.width_pt, p.height_pt] for p in info.pages], warnings=warnings,
                uploaded_by=actor.user.id if actor and actor.user else None,
                uploaded_by_label=(actor.label if actor else "system")[:255], uploaded_at=now))
            if texts:
                await conn.execute(document_pages.insert(), [
                    {"sha256": stored.sha256, "page": t.page, "text": t.text, "folded": t.folded}
                    for t in texts])
            await record(conn, actor, action, meeting_id=meeting_id, target=f"document:{document_id}",
                         details={"version": version, "sha256": stored.sha256, "pages": info.page_count,
                                  "bytes": info.size_bytes, "repaired": info.repaired})
        return document_id, version

    async def update_access(self, document_id: int, *, title: str | None = None,
                            agenda_item_id: int | None = None, clear_item: bool = False,
                            access: DocumentAccess | None = None) -> Document:
        document = await self.get(document_id)
        values: dict[str, Any] = {}
        if title is not None:
            text = clean_line(title)[:500]
            if not text:
                raise Invalid("title: 1 to 500 characters", code="invalid_field", details={"field": "title"})
            values["title"] = text
        if agenda_item_id is not None:
            await self._check_item(document.meeting_id, agenda_item_id)
            values["agenda_item_id"] = agenda_item_id
        elif clear_item:
            values["agenda_item_id"] = None
        if access is not None:
            values.update(visibility=access.visibility, allowed_roles=list(access.allowed_roles),
                          allowed_points=list(access.allowed_points))
        if values:
            async with self.db.transaction() as conn:
                await conn.execute(documents.update().where(documents.c.id == document_id).values(**values))
            await self.bus.publish(topic(document.meeting_id), {"type": "documents.changed"})
        return await self.get(document_id)

    async def delete(self, document_id: int, actor: Principal | None) -> None:
        """Remove a document and its versions (stored files stay: other documents may share them)."""
        document = await self.get(document_id)
        async with self.db.transaction() as conn:
            await conn.execute(documents.delete().where(documents.c.id == document_id))
            await record(conn, actor, "document.delete", meeting_id=document.meeting_id,
                         target=f"document:{document_id}", details={"title": document.title[:200]})
        await self.bus.publish(topic(document.meeting_id), {"type": "documents.changed"})

    # -- rendering -------------------------------------------------------------------------

    def _start_rendering(self, meeting_id: int, ids: asyncio.Future[tuple[int, int]],
                         stored: StoredFile, info: PdfInfo) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(
            self._render(meeting_id, ids, stored, info.page_count), name=f"render-all-{stored.sha256[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _render(self, meeting_id: int, ids: asyncio.Future[tuple[int, int]], stored: StoredFile,
                      page_count: int) -> None:
        """Render every page (page 1 first); progress events once the document has an id."""
        last = 0.0
        try:
            async for progress in self.renderer.render_all(stored.sha256, stored.path, page_count=page_count):
                now = time.monotonic()
                if ids.done() and not ids.cancelled() and (
                        progress.done == progress.total or now - last >= PROGRESS_EVERY_S):
                    last = now
                    document_id, version = ids.result()
                    await self.bus.publish(topic(meeting_id), {
                        "type": "document.progress", "document_id": document_id, "version": version,
                        "done": progress.done, "total": progress.total})
            document_id, version = await ids
            await self.bus.publish(topic(meeting_id), {"type": "document.ready", "document_id": document_id,
                                                       "version": version})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rendering %s failed", stored.sha256[:12])
