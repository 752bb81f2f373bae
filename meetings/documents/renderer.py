"""The async face of the document engine for the server: probe, render, render all, text.

One :class:`PageRenderer` per server node owns a :class:`~.pool.WorkerPool` and a
:class:`~.cache.RenderCache`. A page image is rendered at most once: a cache hit is answered
from disk without touching a worker, and concurrent requests for the same page share one job.
A page that fails (timeout, out of memory, worker crash, broken content) gets a placeholder
image and a recorded failure; the other pages carry on. Pages are 1-based.

Usage (the REST layer)::

    renderer = PageRenderer(data_dir / "render", limits, workers=config.documents.workers)
    await renderer.start()                          # in cleanup_ctx, before yield
    info = await renderer.probe(stored.path, sha256=stored.sha256)    # refuses bad files
    first = await renderer.render(stored.sha256, stored.path, 1, "view")
    async for progress in renderer.render_all(stored.sha256, stored.path): ...
    texts = await renderer.page_texts(stored.path)  # -> text.page_texts(texts, document=id)
    await renderer.close()                          # after yield
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ..errors import DomainError, Invalid
from .cache import RenderCache
from .errors import CorruptPdf, DocumentTimeout, PageNotFound
from .limits import DocumentLimits
from .pool import (
    Job,
    PoolStats,
    Priority,
    WorkerCrashed,
    WorkerPool,
    WorkerTimeout,
    settle,
)
from .probe import A4_PT, PdfInfo, inspect_pdf, probe_failure
from .render import PAGE_KINDS, OutputSpec, PageImage, PageKind, RenderReport
from .worker import render_job, text_job

log = logging.getLogger(__name__)

KNOWN_DOCUMENTS = 256

_Key = tuple[str, int, PageKind]


@dataclass(frozen=True)
class RenderProgress:
    """One page of :meth:`PageRenderer.render_all` is ready (or has its placeholder)."""

    done: int
    total: int
    page: int
    images: tuple[PageImage, ...]

    @property
    def failed(self) -> bool:
        return any(image.placeholder for image in self.images)


@dataclass(frozen=True)
class RendererStats:
    page_jobs: int
    """Page render jobs sent to workers (one job may produce a view and a thumbnail)."""
    cache_hits: int
    placeholders: int
    pool: PoolStats


class PageRenderer:
    """Probe, render and extract text of stored PDFs through a long-lived worker pool."""

    def __init__(self, cache_dir: Path, limits: DocumentLimits | None = None, *,
                 workers: int = 2) -> None:
        self.limits = limits or DocumentLimits()
        self.cache = RenderCache(Path(cache_dir), self.limits)
        self._pool = WorkerPool(self.limits, workers=workers)
        self._inflight: dict[_Key, asyncio.Future[PageImage]] = {}
        self._jobs: dict[_Key, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._infos: OrderedDict[str, PdfInfo] = OrderedDict()
        self._closed = False
        self._page_jobs = 0
        self._cache_hits = 0
        self._placeholders = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker processes now, so the first upload does not wait for them."""
        await self._pool.start()

    async def close(self) -> None:
        """Cancel page tasks, stop the workers (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        # Waiters first: nobody may stay blocked on a page that will never be rendered now.
        for future in self._inflight.values():
            future.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.close()
        self._inflight.clear()
        self._jobs.clear()

    def stats(self) -> RendererStats:
        return RendererStats(self._page_jobs, self._cache_hits, self._placeholders,
                             self._pool.stats())

    def worker_pids(self) -> tuple[int, ...]:
        return self._pool.pids()

    def remember(self, sha256: str, info: PdfInfo) -> None:
        """Tell the renderer what the probe found (e.g. loaded from the database), so page
        numbers are checked and placeholders get the page's shape."""
        self._infos[sha256] = info
        self._infos.move_to_end(sha256)
        while len(self._infos) > KNOWN_DOCUMENTS:
            self._infos.popitem(last=False)

    async def probe(self, path: Path | str, *, sha256: str | None = None) -> PdfInfo:
        """Check a stored upload in a worker (see :mod:`.probe`); raises DocumentInvalid."""
        await self.start()
        try:
            info: PdfInfo = await self._pool.run(inspect_pdf, str(path), self.limits,
                                                 timeout_s=self.limits.probe_timeout_s,
                                                 priority=Priority.INTERACTIVE)
        except DomainError:
            raise
        except Exception as exc:  # noqa: BLE001 -- timeout, crash: reported as a refusal
            raise probe_failure(exc, self.limits) from None
        if sha256:
            self.remember(sha256, info)
        return info

    async def page_texts(self, path: Path | str) -> tuple[str, ...]:
        """NFC text of every page (index 0 is page 1); see :func:`.text.page_texts`."""
        await self.start()
        try:
            texts: tuple[str, ...] = await self._pool.run(
                text_job, str(path), timeout_s=self.limits.text_timeout_s,
                priority=Priority.FIRST_PAGE)
        except DomainError:
            raise
        except WorkerTimeout:
            raise DocumentTimeout(
                f"reading the text took longer than {self.limits.text_timeout_s:g} s",
                details={"timeout_s": self.limits.text_timeout_s}) from None
        except Exception as exc:  # noqa: BLE001 -- a crash while reading is a broken file
            raise CorruptPdf(f"the text of the PDF cannot be read: {exc}") from None
        return texts

    async def render(self, sha256: str, path: Path | str, page: int,
                     kind: PageKind = "view") -> PageImage:
        """The image of one page, from the cache or rendered now ahead of background work."""
        self._check_page(sha256, page, kind)
        cached = self.cache.lookup(sha256, page, kind)
        if cached is not None:
            self._cache_hits += 1
            return cached
        await self.start()  # before looking for a shared job: no await between look and submit
        key = (sha256, page, kind)
        future = self._inflight.get(key)
        if future is None:
            future = self._submit(sha256, path, page, (kind,), Priority.INTERACTIVE)[kind]
        else:
            job = self._jobs.get(key)
            if job is not None:
                self._pool.promote(job, Priority.INTERACTIVE)
        return await asyncio.shield(future)

    async def render_all(self, sha256: str, path: Path | str, *,
                         kinds: Iterable[PageKind] = PAGE_KINDS,
                         page_count: int | None = None) -> AsyncGenerator[RenderProgress, None]:
        """Render every page (page 1 first) into ``kinds``, yielding as pages are ready.

        Pages already cached are yielded first. The jobs belong to the renderer: leaving the
        loop early does not stop them (the pages are wanted anyway); ``close()`` does.
        """
        wanted = tuple(dict.fromkeys(kinds))
        for kind in wanted:
            self._check_page(sha256, 1, kind)
        if page_count is None:
            info = self._infos.get(sha256) or await self.probe(path, sha256=sha256)
            page_count = info.page_count
        await self.start()
        waiting: list[asyncio.Future[list[Any]]] = []
        partial: dict[int, tuple[PageImage, ...]] = {}
        ready: list[tuple[int, tuple[PageImage, ...]]] = []
        for page in range(1, page_count + 1):
            futures: list[asyncio.Future[PageImage]] = []
            images: list[PageImage] = []
            missing: list[PageKind] = []
            for kind in wanted:
                cached = self.cache.lookup(sha256, page, kind)
                if cached is not None:
                    images.append(cached)
                elif (sha256, page, kind) in self._inflight:
                    futures.append(self._inflight[(sha256, page, kind)])
                else:
                    missing.append(kind)
            if missing:
                priority = Priority.FIRST_PAGE if page == 1 else Priority.BACKGROUND
                futures.extend(self._submit(sha256, path, page, tuple(missing),
                                            priority).values())
            if futures:  # shielded: giving up on this loop never cancels the page jobs
                gathering = asyncio.gather(*(asyncio.shield(f) for f in futures),
                                           return_exceptions=True)
                gathering.add_done_callback(_consume_exception)
                waiting.append(gathering)
                partial[page] = tuple(images)
            else:
                ready.append((page, tuple(images)))
        done = 0
        try:
            for page, images_ready in ready:
                done += 1
                self._cache_hits += len(images_ready)
                yield RenderProgress(done, page_count, page, images_ready)
            for next_ready in asyncio.as_completed(waiting):
                rendered = await next_ready
                for result in rendered:
                    if isinstance(result, BaseException):
                        raise result  # the document itself is refused (e.g. not a PDF)
                page = rendered[0].page
                done += 1
                yield RenderProgress(done, page_count, page, partial[page] + tuple(rendered))
        finally:
            for gathering in waiting:
                gathering.cancel()

    def _check_page(self, sha256: str, page: int, kind: PageKind) -> None:
        if kind not in PAGE_KINDS:
            raise Invalid(f"unknown page image kind {kind!r}", code="invalid_page_kind")
        info = self._infos.get(sha256)
        if page < 1 or (info is not None and page > info.page_count):
            raise PageNotFound(f"the document has no page {page}", details={"page": page})

    def _submit(self, sha256: str, path: Path | str, page: int, kinds: tuple[PageKind, ...],
                priority: Priority) -> dict[PageKind, asyncio.Future[PageImage]]:
        outputs = tuple(OutputSpec(kind, self.limits.width_of(kind),
                                   str(self.cache.image_path(sha256, page, kind)))
                        for kind in kinds)
        job = self._pool.submit(render_job, str(path), page, outputs,
                                timeout_s=self.limits.render_timeout_s, priority=priority)
        self._page_jobs += 1
        loop = asyncio.get_running_loop()
        futures = {kind: loop.create_future() for kind in kinds}
        for kind, future in futures.items():
            self._inflight[(sha256, page, kind)] = future
            self._jobs[(sha256, page, kind)] = job
            future.add_done_callback(_consume_exception)
        task = loop.create_task(self._finish(sha256, page, job, futures),
                                name=f"render-{sha256[:8]}-{page}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return futures

    async def _finish(self, sha256: str, page: int, job: Job,
                      futures: dict[PageKind, asyncio.Future[PageImage]]) -> None:
        """Turn a page job's report into images or placeholders; owned by the renderer."""
        try:
            failures: dict[PageKind, tuple[str, str]] = {}
            aspect = self._aspect(sha256, page, None)
            try:
                report: RenderReport = await job.future
            except WorkerTimeout as exc:
                failures = {kind: ("render_timeout", str(exc)) for kind in futures}
            except WorkerCrashed as exc:
                failures = {kind: ("worker_crashed", str(exc)) for kind in futures}
            except DomainError as exc:  # the document or page itself is refused
                for future in futures.values():
                    settle(future, error=exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- e.g. the cache is not writable:
                for future in futures.values():  # an error for the caller, nothing recorded
                    settle(future, error=exc)
                return
            else:
                aspect = self._aspect(sha256, page, report)
                for result in report.outputs:
                    if result.ok:
                        path = self.cache.image_path(sha256, page, result.kind)
                        settle(futures[result.kind], value=PageImage(
                            sha256, page, result.kind, path, self.limits.media_type))
                    else:
                        failures[result.kind] = (result.error or "render_failed", result.message)
            for kind, (code, message) in failures.items():
                log.warning("page %d of %s (%s) failed: %s %s", page, sha256[:12], kind, code,
                            message)
                image = await asyncio.to_thread(self.cache.record_failure, sha256, page, kind,
                                                code, message, aspect)
                self._placeholders += 1
                settle(futures[kind], value=image)
        except asyncio.CancelledError:
            for future in futures.values():
                future.cancel()
            raise
        except Exception as exc:
            log.exception("finishing page %d of %s failed", page, sha256[:12])
            for future in futures.values():
                settle(future, error=exc)
        finally:
            for kind in futures:
                self._inflight.pop((sha256, page, kind), None)
                self._jobs.pop((sha256, page, kind), None)

    def _aspect(self, sha256: str, page: int, report: RenderReport | None) -> float:
        if report is not None and report.page_width_pt and report.page_height_pt:
            return report.page_height_pt / report.page_width_pt
        info = self._infos.get(sha256)
        if info is not None and 1 <= page <= info.page_count:
            return info.page_size(page).aspect
        return A4_PT[1] / A4_PT[0]


def _consume_exception(future: asyncio.Future[Any]) -> None:
    """Mark an error as seen: nobody may be awaiting a background page's future."""
    if not future.cancelled():
        future.exception()
