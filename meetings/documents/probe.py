"""Check an uploaded file before anything else touches it (kiểm tra tài liệu tải lên).

``inspect_pdf`` runs *inside* a worker process (MuPDF parses untrusted bytes there, under a
memory limit and a timeout); ``probe_pdf`` is the synchronous entry point that does exactly
that in a fresh worker, and ``PageRenderer.probe`` does it in the long-lived pool.

What is refused, in order: an empty file, a file over the size limit, anything that is not a
PDF (a PNG, JPEG or HTML renamed ``.pdf`` *opens* in PyMuPDF, so both the ``%PDF-`` header and
``doc.is_pdf`` are required), a file MuPDF cannot open, a file protected by a user password,
a file without pages or over the page limit, a page larger than ``max_page_pt``. A damaged
file that MuPDF repairs is accepted with ``repaired=True`` and MuPDF's warnings, so the
secretary can be told that some pages may be blank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pymupdf

from ..errors import NotFound
from ..store.files import FileTooLarge
from ..text import clean_line
from .errors import (
    CorruptPdf,
    DocumentInvalid,
    DocumentTimeout,
    EmptyFile,
    EncryptedPdf,
    NotPdf,
    PageTooLarge,
    TooManyPages,
)
from .limits import DocumentLimits

HEADER_WINDOW = 1024
MAX_WARNINGS = 20
MAX_WARNING_CHARS = 200
A4_PT = (595.28, 841.89)


@dataclass(frozen=True)
class PageSize:
    """One page's displayed size in PDF points (rotation applied)."""

    width_pt: float
    height_pt: float

    @property
    def aspect(self) -> float:
        """Height over width."""
        return self.height_pt / self.width_pt


@dataclass(frozen=True)
class PdfInfo:
    """What the probe learned about an accepted PDF."""

    size_bytes: int
    page_count: int
    pages: tuple[PageSize, ...]
    """Size of each page; ``pages[0]`` is page 1."""
    title: str
    author: str
    subject: str
    pdf_version: str
    """As MuPDF reports it, e.g. ``PDF 1.7``."""
    encrypted: bool
    """Encrypted with an owner password only: opens and renders without a password."""
    repaired: bool
    """MuPDF had to repair the file: some pages may be missing or blank."""
    warnings: tuple[str, ...]
    """MuPDF's warnings while opening (at most 20 lines), for the secretary and the logs."""

    def page_size(self, page: int) -> PageSize:
        return self.pages[page - 1]


def probe_pdf(path: Path | str, limits: DocumentLimits | None = None) -> PdfInfo:
    """Check ``path`` in a fresh worker process under the worker memory limit and
    ``probe_timeout_s``. Raises a :class:`~.errors.DocumentInvalid` subclass."""
    from .pool import run_in_fresh_worker  # the pool imports the worker, which imports us

    limits = limits or DocumentLimits()
    try:
        info: PdfInfo = run_in_fresh_worker(inspect_pdf, (str(path), limits), limits=limits,
                                            timeout_s=limits.probe_timeout_s)
    except DocumentInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 -- timeout, crash: reported as a refusal
        raise probe_failure(exc, limits) from None
    return info


def probe_failure(exc: BaseException, limits: DocumentLimits) -> DocumentInvalid:
    """The refusal to report when the probe job itself failed (timeout, crash, bug)."""
    from .pool import WorkerTimeout

    if isinstance(exc, WorkerTimeout):
        return DocumentTimeout(f"opening the file took longer than {limits.probe_timeout_s:g} s",
                               details={"timeout_s": limits.probe_timeout_s})
    return CorruptPdf(f"the PDF cannot be read: {_short(str(exc))}")


def check_header(path: Path | str, limits: DocumentLimits) -> int:
    """Size and content-type checks that need no parser. Returns the file size."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise NotFound("the document file is missing", code="file_not_found") from None
    if size == 0:
        raise EmptyFile("the file is empty")
    if size > limits.max_bytes:
        raise FileTooLarge(limits.max_bytes)  # the upload stream enforces it first
    with open(path, "rb") as handle:
        head = handle.read(HEADER_WINDOW)
    if b"%PDF-" not in head:
        raise NotPdf("the file is not a PDF document (no %PDF- header)")
    return size


def open_pdf(path: Path | str, limits: DocumentLimits) -> tuple[pymupdf.Document, int]:
    """Open a file that passed :func:`check_header` as a PDF, refusing what is not one.

    ``needs_pass`` is read once, straight after opening, and ``authenticate`` is never called:
    reading ``needs_pass`` after a failed ``authenticate()`` wipes the key and pages then render
    blank without any error.
    """
    size = check_header(path, limits)
    try:
        doc = pymupdf.open(str(path))
    except pymupdf.EmptyFileError:
        raise EmptyFile("the file is empty") from None
    except Exception as exc:  # noqa: BLE001 -- FileDataError, FzErrorFormat, …: unparseable
        raise CorruptPdf(f"the PDF cannot be opened: {_short(str(exc))}") from None
    try:
        if not doc.is_pdf:
            raise NotPdf("the file is not a PDF document")
        if doc.needs_pass:
            raise EncryptedPdf("the PDF is protected by a password; upload it without one")
        count = doc.page_count
        if count < 1:
            raise CorruptPdf("the PDF has no pages")
        if count > limits.max_pages:
            raise TooManyPages(f"the PDF has {count} pages; at most {limits.max_pages} are allowed",
                               details={"page_count": count, "max_pages": limits.max_pages})
    except BaseException:
        doc.close()
        raise
    return doc, size


def inspect_pdf(path: str, limits: DocumentLimits) -> PdfInfo:
    """The probe itself; call it in a worker process (see :func:`probe_pdf`)."""
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    doc, size = open_pdf(path, limits)
    try:
        sizes: list[PageSize] = []
        unreadable: list[str] = []
        for index in range(doc.page_count):
            try:
                rect = doc.load_page(index).rect
                page_size = PageSize(round(rect.width, 2), round(rect.height, 2))
            except Exception as exc:  # noqa: BLE001 -- one broken page: warn, keep the rest
                unreadable.append(f"page {index + 1} cannot be read: {_short(str(exc))}")
                page_size = sizes[-1] if sizes else PageSize(*A4_PT)
            if not (page_size.width_pt > 0 and page_size.height_pt > 0):
                raise CorruptPdf(f"page {index + 1} has an empty size",
                                 details={"page": index + 1})
            largest = max(page_size.width_pt, page_size.height_pt)
            if largest > limits.max_page_pt:
                raise PageTooLarge(
                    f"page {index + 1} is {page_size.width_pt:g} x {page_size.height_pt:g} pt; "
                    f"the largest side allowed is {limits.max_page_pt:g} pt",
                    details={"page": index + 1, "width_pt": page_size.width_pt,
                             "height_pt": page_size.height_pt,
                             "max_page_pt": limits.max_page_pt})
            sizes.append(page_size)
        if len(unreadable) == doc.page_count:
            raise CorruptPdf("no page of the PDF can be read")
        meta = doc.metadata or {}
        return PdfInfo(
            size_bytes=size,
            page_count=doc.page_count,
            pages=tuple(sizes),
            title=_meta(meta, "title"),
            author=_meta(meta, "author"),
            subject=_meta(meta, "subject"),
            pdf_version=_meta(meta, "format"),
            encrypted=bool(doc.is_encrypted),
            repaired=bool(doc.is_repaired),
            warnings=collect_warnings(unreadable),
        )
    finally:
        doc.close()


def collect_warnings(extra: list[str] | None = None) -> tuple[str, ...]:
    """MuPDF's warnings since the last reset (deduplicated, bounded), then ``extra``."""
    lines: list[str] = []
    for line in [*pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines(), *(extra or [])]:
        line = _short(line.strip())
        if line and line not in lines:
            lines.append(line)
    return tuple(lines[:MAX_WARNINGS])


def _meta(meta: dict[str, str], key: str) -> str:
    value = meta.get(key) or ""
    return clean_line(str(value))[:500]


def _short(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 1] + "…"
