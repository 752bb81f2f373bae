"""The document engine of the paperless meeting (họp không giấy): check uploaded PDFs, render
page views and thumbnails in a long-lived worker pool, extract and search page text.

No HTTP and no database here: ``server/`` streams uploads into the ``FileStore``, then calls
:class:`PageRenderer` (probe → first page → the rest) and stores :class:`PdfInfo` and the
page texts; searches use :mod:`meetings.documents.text`.
"""

from __future__ import annotations

from .cache import RenderCache
from .errors import (
    CorruptPdf,
    DocumentInvalid,
    DocumentTimeout,
    EmptyFile,
    EncryptedPdf,
    NotPdf,
    PageNotFound,
    PageTooLarge,
    TooManyPages,
)
from .limits import DocumentLimits
from .pool import PoolStats, Priority, WorkerCrashed, WorkerPool, WorkerTimeout
from .probe import PageSize, PdfInfo, probe_pdf
from .render import PAGE_KINDS, PageImage, PageKind
from .renderer import PageRenderer, RendererStats, RenderProgress
from .text import (
    PageText,
    SearchHit,
    SearchIndex,
    fold_with_offsets,
    like_pattern,
    page_texts,
    search_fold,
    search_pages,
)

__all__ = [
    "PAGE_KINDS", "CorruptPdf", "DocumentInvalid", "DocumentLimits", "DocumentTimeout",
    "EmptyFile", "EncryptedPdf", "NotPdf", "PageImage", "PageKind",
    "PageNotFound", "PageRenderer", "PageSize", "PageText", "PageTooLarge", "PdfInfo",
    "PoolStats", "Priority", "RenderCache", "RenderProgress", "RendererStats", "SearchHit",
    "SearchIndex", "TooManyPages", "WorkerCrashed", "WorkerPool", "WorkerTimeout",
    "fold_with_offsets", "like_pattern", "page_texts", "probe_pdf", "search_fold",
    "search_pages",
]
