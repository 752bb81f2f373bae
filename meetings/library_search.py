"""Search a meeting's documents (tìm kiếm tài liệu): with or without diacritics, đ/d alike.

The database selects candidate pages with ``LIKE`` on the folded text of the *current*
versions of the documents the caller may see; :func:`meetings.documents.search_pages` then
finds the exact matches and cuts snippets of the original text (diacritics kept).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from .documents import like_pattern, search_pages
from .documents.text import PageText, compile_query
from .store.db import Database
from .store.tables_documents import document_pages, document_versions, documents

MAX_CANDIDATE_PAGES = 500
"""Pages fetched at most. ``LIKE`` on the folded column selects exactly the pages the folded
query occurs in, so each candidate gives at least one hit and ``limit`` pages are enough."""


@dataclass(frozen=True)
class DocumentHit:
    document_id: int
    version: int
    title: str
    page: int
    snippet: str
    highlight: tuple[int, int]


async def search_meeting(db: Database, meeting_id: int, query: str, *,
                         document_ids: Collection[int], limit: int = 50) -> list[DocumentHit]:
    """Hits in the current versions of ``document_ids`` (already filtered by access)."""
    compile_query(query)  # refuses an over-long query with a clear error
    pattern = like_pattern(query)
    if pattern is None or not document_ids:
        return []
    stmt = (
        sa.select(documents.c.id, documents.c.title, document_versions.c.version,
                  document_pages.c.page, document_pages.c.text)
        .select_from(documents.join(document_versions, sa.and_(
            document_versions.c.document_id == documents.c.id,
            document_versions.c.version == documents.c.current_version)).join(
            document_pages, document_pages.c.sha256 == document_versions.c.sha256))
        .where(documents.c.meeting_id == meeting_id, documents.c.id.in_(list(document_ids)),
               document_pages.c.folded.like(pattern, escape="\\"))
        .order_by(documents.c.id, document_pages.c.page)
        .limit(min(MAX_CANDIDATE_PAGES, max(1, limit)))
    )
    async with db.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    meta = {str(r.id): (r.id, r.version, r.title) for r in rows}
    pages = [PageText(r.page, r.text, "", str(r.id)) for r in rows]  # search_pages folds itself
    hits = []
    for hit in search_pages(pages, query, limit=limit, per_page=2):
        document_id, version, title = meta[hit.document]
        hits.append(DocumentHit(document_id, version, title, hit.page, hit.snippet, hit.highlight))
    return hits
