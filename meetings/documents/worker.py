"""The worker-process side of the document engine: every byte of an uploaded PDF is parsed here.

A worker is started by :mod:`.pool` with the ``spawn`` method (a fresh interpreter that imports
only this package, PyMuPDF and Pillow — never a fork of the server), runs :func:`init_worker`
once (address-space limit, MuPDF messages off the server's stderr), then runs jobs through
:func:`run_job`, which measures the job's CPU time and keeps memory bounded: above
``worker_store_soft_bytes`` resident it closes cached documents and empties MuPDF's store.

The worker keeps its state in the module global ``_state``: a process has exactly one, created
by the initializer (this is the process's owner, not shared mutable state of the server).
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymupdf

from ..errors import DomainError, NotFound
from .errors import PageNotFound
from .limits import DocumentLimits
from .probe import collect_warnings, open_pdf
from .render import (
    OutputResult,
    OutputSpec,
    RenderReport,
    encode_raster,
    limit_native_threads,
    render_page,
    tune_image_scaling,
)
from .text import normalise_page_text

OPEN_DOCUMENTS = 4
TEXT_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
"""No ligatures kept ("ﬁ" becomes "fi", so search finds it) and no CID numbers for glyphs
without Unicode (they would be junk text; MuPDF then gives U+FFFD)."""


@dataclass(frozen=True)
class JobOutcome:
    """A job's value or error, with what it cost the worker."""

    value: Any
    error: BaseException | None
    cpu_s: float
    rss_bytes: int


class _WorkerState:
    def __init__(self, limits: DocumentLimits) -> None:
        self.limits = limits
        self.documents: OrderedDict[tuple[str, int, int], pymupdf.Document] = OrderedDict()

    def document(self, path: str) -> pymupdf.Document:
        """An open document, reused while the file is unchanged (opening repairs broken files
        every time, which can cost more than rendering a page)."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise NotFound("the document file is missing", code="file_not_found") from None
        key = (path, stat.st_mtime_ns, stat.st_size)
        doc = self.documents.get(key)
        if doc is not None:
            self.documents.move_to_end(key)
            return doc
        doc, _ = open_pdf(path, self.limits)
        self.documents[key] = doc
        while len(self.documents) > OPEN_DOCUMENTS:
            _, old = self.documents.popitem(last=False)
            old.close()
        return doc

    def release_memory(self) -> None:
        for doc in self.documents.values():
            doc.close()
        self.documents.clear()
        pymupdf.TOOLS.store_shrink(100)
        gc.collect()

    def housekeeping(self) -> int:
        rss = resident_bytes()
        if rss > self.limits.worker_store_soft_bytes:
            self.release_memory()
            rss = resident_bytes()
        return rss


_state: _WorkerState | None = None


def init_worker(limits: DocumentLimits) -> None:
    """Initializer of every worker process."""
    global _state
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    limit_native_threads()  # before warm_up imports numpy (for the JPEG encoder)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = limits.worker_memory_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    tune_image_scaling()
    _state = _WorkerState(limits)
    warm_up(limits)


def warm_up(limits: DocumentLimits) -> None:
    """Render and encode a tiny page once, so one-time set-up (MuPDF's font machinery, the
    JPEG encoder) is paid at pool start, not by the first uploaded page."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=100, height=100)
        page.insert_text((10, 50), "Điểm cầu")
        encode_raster(page.get_displaylist(), 1.0, 100, limits)
    pymupdf.TOOLS.mupdf_warnings(reset=True)


def worker_state() -> _WorkerState:
    if _state is None:
        raise RuntimeError("not a document worker process (init_worker has not run)")
    return _state


def worker_pid() -> int:
    return os.getpid()


def run_job(fn: Callable[..., Any], args: tuple[Any, ...]) -> JobOutcome:
    """Run one job; errors come back as values so they always unpickle in the server."""
    start = time.process_time()
    value: Any = None
    error: BaseException | None = None
    try:
        value = fn(*args)
    except DomainError as exc:
        error = exc
    except MemoryError:
        worker_state().release_memory()
        error = RuntimeError("the worker ran out of memory")
    except Exception as exc:  # noqa: BLE001 -- MuPDF errors do not pickle: send their text
        error = RuntimeError(f"{type(exc).__name__}: {exc}")
    rss = worker_state().housekeeping()
    return JobOutcome(value, error, time.process_time() - start, rss)


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def render_job(path: str, page: int, outputs: tuple[OutputSpec, ...]) -> RenderReport:
    """Render one page (1-based) into each of ``outputs``. A failure of the page is reported
    per output (the caller shows a placeholder); an unusable *document* raises."""
    state = worker_state()
    start = time.process_time()
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    doc = state.document(path)
    if not 1 <= page <= doc.page_count:
        raise PageNotFound(f"the document has no page {page}",
                           details={"page": page, "page_count": doc.page_count})
    width_pt: float | None = None
    height_pt: float | None = None
    try:
        loaded = doc.load_page(page - 1)
        width_pt, height_pt = float(loaded.rect.width), float(loaded.rect.height)
        render_page(loaded, outputs, state.limits)
        results = tuple(OutputResult(spec.kind, True) for spec in outputs)
    except OSError:
        raise  # writing the cache failed: not the page's fault, so nothing is recorded
    except Exception as exc:  # noqa: BLE001 -- any page failure becomes a placeholder
        code = failure_code(exc)
        if code == "out_of_memory":
            state.release_memory()
        message = f"{type(exc).__name__}: {exc}"[:300]
        results = tuple(OutputResult(spec.kind, False, code, message) for spec in outputs)
    return RenderReport(page=page, outputs=results, page_width_pt=width_pt,
                        page_height_pt=height_pt, cpu_s=time.process_time() - start,
                        rss_bytes=resident_bytes(), warnings=collect_warnings())


def failure_code(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out_of_memory"
    name = type(exc).__name__
    text = str(exc).lower()
    if name == "FzErrorLimit" or (name == "FzErrorSystem" and "alloc" in text):
        return "out_of_memory"
    return "render_failed"


def text_job(path: str) -> tuple[str, ...]:
    """The text of every page, NFC-normalised; a page that cannot be read gives ""."""
    doc = worker_state().document(path)
    texts: list[str] = []
    for index in range(doc.page_count):
        try:
            raw = doc.load_page(index).get_text("text", flags=TEXT_FLAGS)
        except Exception:  # noqa: BLE001 -- an unreadable page has no text
            raw = ""
        texts.append(normalise_page_text(raw))
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    return tuple(texts)
