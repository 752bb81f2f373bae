"""A long-lived pool of document worker processes with priorities, timeouts and replacement.

Each worker is a one-process :class:`~concurrent.futures.ProcessPoolExecutor` (spawned, with
:func:`~.worker.init_worker` as initializer). One executor per worker, rather than one shared
executor, because a page that hangs inside MuPDF cannot be interrupted: the only remedy is to
kill that process — and with a shared executor that breaks every other job in flight
(``BrokenProcessPool``). Here a timeout kills just its own worker (by the pid it reported at
start), the job gets :class:`WorkerTimeout`, a fresh worker takes the slot, and the other
workers carry on. A worker that dies (OOM killer, crash) is replaced the same way.

Jobs wait in one priority queue: a person waiting (a probe after upload, a page a delegate
opened) goes before the first page of a new document, which goes before eager background work.
Workers are recycled after ``worker_max_jobs`` jobs or when they stay above
``worker_store_soft_bytes`` after emptying MuPDF's store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .limits import DocumentLimits
from .worker import JobOutcome, init_worker, run_job, worker_pid

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0


class Priority(IntEnum):
    INTERACTIVE = 0
    """Someone is waiting: a probe after upload, a page a viewer asked for."""
    FIRST_PAGE = 1
    """The first page (and the text) of a newly uploaded document."""
    BACKGROUND = 2
    """Eager rendering of the other pages."""


class WorkerTimeout(Exception):
    """The job ran past its timeout; its worker was killed and replaced."""


class WorkerCrashed(Exception):
    """The worker process died during the job (out of memory, crash); it was replaced."""


class PoolClosed(Exception):
    """The pool is closed: no more jobs."""


@dataclass(frozen=True)
class PoolStats:
    workers: int
    queued: int
    """Jobs submitted and not finished (waiting or running)."""
    jobs: int
    """Jobs sent to a worker."""
    failed_jobs: int
    timeouts: int
    crashes: int
    restarts: int
    cpu_s: float
    """CPU seconds the workers spent in jobs, as they measured it themselves."""
    peak_rss_bytes: int
    """Largest resident size a worker reported after a job (after emptying MuPDF's store)."""
    job_cpu_s: dict[str, float] = field(default_factory=dict)
    """``cpu_s`` by job function name (``render_job``, ``text_job``, ``inspect_pdf``…)."""


@dataclass(eq=False)
class Job:
    """A submitted job: await ``future`` (shield it if several callers share it)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    timeout_s: float
    priority: int
    future: asyncio.Future[Any]
    started: bool = field(default=False)


class _Worker:
    """One worker process inside its own one-process executor."""

    def __init__(self, limits: DocumentLimits) -> None:
        self.executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker, initargs=(limits,))
        self.pid: int | None = None
        self.jobs = 0

    async def start(self) -> None:
        with main_module_hidden():  # the executor spawns its process inside this submit
            first = self.executor.submit(worker_pid)
        self.pid = await asyncio.wait_for(asyncio.wrap_future(first), START_TIMEOUT_S)

    def kill(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class WorkerPool:
    """``workers`` long-lived processes fed from one priority queue."""

    def __init__(self, limits: DocumentLimits, *, workers: int = 2) -> None:
        if not 1 <= workers <= 64:
            raise ValueError("documents.workers must be between 1 and 64")
        self.limits = limits
        self.size = workers
        self._workers: list[_Worker | None] = [None] * workers
        self._queue: asyncio.PriorityQueue[tuple[int, int, Job]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._runners: list[asyncio.Task[None]] = []
        self._reapers: set[asyncio.Task[None]] = set()
        self._pending: set[Job] = set()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._jobs = 0
        self._failed = 0
        self._timeouts = 0
        self._crashes = 0
        self._restarts = 0
        self._cpu_s = 0.0
        self._job_cpu_s: dict[str, float] = {}
        self._peak_rss = 0

    async def start(self) -> None:
        """Spawn every worker and wait until each one has started (idempotent)."""
        async with self._start_lock:
            if not self._started:
                await self._start()

    async def _start(self) -> None:
        if self._closed:
            raise PoolClosed("the document worker pool is closed")
        workers = [_Worker(self.limits) for _ in range(self.size)]
        started = await asyncio.gather(*(worker.start() for worker in workers),
                                       return_exceptions=True)
        failure = next((item for item in started if isinstance(item, BaseException)), None)
        if failure is not None:
            for worker in workers:
                worker.kill()
                self._reap(worker)
            raise failure
        self._started = True
        self._workers = list(workers)
        self._runners = [asyncio.create_task(self._run_slot(index), name=f"doc-worker-{index}")
                         for index in range(self.size)]

    def submit(self, fn: Callable[..., Any], *args: Any, timeout_s: float,
               priority: int = Priority.BACKGROUND) -> Job:
        if self._closed:
            raise PoolClosed("the document worker pool is closed")
        job = Job(fn, args, timeout_s, int(priority), asyncio.get_running_loop().create_future())
        self._pending.add(job)
        job.future.add_done_callback(lambda _: self._pending.discard(job))
        self._queue.put_nowait((job.priority, next(self._seq), job))
        return job

    def promote(self, job: Job, priority: int) -> None:
        """Move a queued job ahead (its old queue entry is skipped when it comes up)."""
        if not job.started and not job.future.done() and priority < job.priority:
            job.priority = int(priority)
            self._queue.put_nowait((job.priority, next(self._seq), job))

    async def run(self, fn: Callable[..., Any], *args: Any, timeout_s: float,
                  priority: int = Priority.INTERACTIVE) -> Any:
        """Submit and wait. Cancelling the caller withdraws a job that has not started."""
        return await self.submit(fn, *args, timeout_s=timeout_s, priority=priority).future

    def pids(self) -> tuple[int, ...]:
        return tuple(w.pid for w in self._workers if w is not None and w.pid is not None)

    def stats(self) -> PoolStats:
        return PoolStats(workers=len(self.pids()), queued=len(self._pending), jobs=self._jobs,
                         failed_jobs=self._failed, timeouts=self._timeouts,
                         crashes=self._crashes, restarts=self._restarts,
                         cpu_s=round(self._cpu_s, 6), peak_rss_bytes=self._peak_rss,
                         job_cpu_s={name: round(cpu, 6) for name, cpu in self._job_cpu_s.items()})

    async def close(self) -> None:
        """Withdraw queued jobs, stop the runners, stop every worker (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        for job in list(self._pending):
            job.future.cancel()
        for index in range(self.size):
            self._retire(index, kill=False)
        if self._reapers:
            await asyncio.gather(*self._reapers, return_exceptions=True)

    async def _run_slot(self, index: int) -> None:
        while True:
            _, _, job = await self._queue.get()
            if job.started or job.future.done():
                continue  # a stale entry of a promoted job, or withdrawn by its caller
            job.started = True
            try:
                worker = await self._ensure_worker(index)
                await self._execute(index, worker, job)
            except asyncio.CancelledError:
                if not job.future.done():
                    job.future.cancel()
                self._retire(index, kill=True)
                raise
            except Exception as exc:  # a worker that cannot even start
                log.exception("document worker %d failed to start", index)
                settle(job.future, error=exc)
                await asyncio.sleep(1.0)

    async def _ensure_worker(self, index: int) -> _Worker:
        worker = self._workers[index]
        if worker is None:
            worker = _Worker(self.limits)
            try:
                await worker.start()
            except BaseException:
                worker.kill()
                self._reap(worker)
                raise
            self._workers[index] = worker
            self._restarts += 1
        return worker

    async def _execute(self, index: int, worker: _Worker, job: Job) -> None:
        try:
            pending = worker.executor.submit(run_job, job.fn, job.args)
        except RuntimeError:  # BrokenProcessPool: the worker died while idle
            log.warning("document worker pid %s died while idle; replacing it", worker.pid)
            self._crashes += 1
            self._retire(index, kill=True)
            job.started = False  # it never ran: queue it again for a fresh worker
            self._queue.put_nowait((job.priority, next(self._seq), job))
            return
        self._jobs += 1
        try:
            outcome: JobOutcome = await asyncio.wait_for(asyncio.wrap_future(pending),
                                                         job.timeout_s)
        except TimeoutError:
            self._timeouts += 1
            self._failed += 1
            log.warning("document job %s timed out after %.1f s; replacing worker pid %s",
                        getattr(job.fn, "__name__", job.fn), job.timeout_s, worker.pid)
            self._retire(index, kill=True)
            settle(job.future, error=WorkerTimeout(f"the job took longer than {job.timeout_s:g} s"))
            return
        except BrokenProcessPool:
            self._crashes += 1
            self._failed += 1
            log.warning("document worker pid %s died; replacing it", worker.pid)
            self._retire(index, kill=True)
            settle(job.future, error=WorkerCrashed("the document worker process died"))
            return
        worker.jobs += 1
        self._cpu_s += outcome.cpu_s
        name = getattr(job.fn, "__name__", "job")
        self._job_cpu_s[name] = self._job_cpu_s.get(name, 0.0) + outcome.cpu_s
        self._peak_rss = max(self._peak_rss, outcome.rss_bytes)
        if outcome.error is not None:
            self._failed += 1
            settle(job.future, error=outcome.error)
        else:
            settle(job.future, value=outcome.value)
        if (outcome.rss_bytes > self.limits.worker_store_soft_bytes
                or worker.jobs >= self.limits.worker_max_jobs):
            self._retire(index, kill=False)

    def _retire(self, index: int, *, kill: bool) -> None:
        worker = self._workers[index]
        self._workers[index] = None
        if worker is None:
            return
        if kill:
            worker.kill()
        self._reap(worker)

    def _reap(self, worker: _Worker) -> None:
        """Shut the executor down in a thread (joins the process: no zombies), owned by us."""
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(worker.executor.shutdown, wait=True, cancel_futures=True))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)


def settle(future: asyncio.Future[Any], *, value: Any = None,
           error: BaseException | None = None) -> None:
    """Resolve ``future`` unless its waiter already gave up on it."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Keep ``spawn`` from re-importing the server's ``__main__`` in a new worker.

    A spawned child normally re-runs the parent's main module (by path or by module name) so
    that pickled functions defined there resolve. Our job functions live in
    :mod:`.worker`, and re-importing ``server/__main__.py`` would load aiohttp and aiortc into
    every worker — or, unguarded, start a second server. For the moment the process is
    launched, ``__main__`` shows neither a spec nor a file, so the child skips that step.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    missing = object()
    saved = {name: getattr(main, name, missing) for name in ("__spec__", "__file__")}
    try:
        main.__spec__ = None
        if saved["__file__"] is not missing:
            del main.__file__
        yield
    finally:
        for name, value in saved.items():
            if value is not missing:
                setattr(main, name, value)


def run_in_fresh_worker(fn: Callable[..., Any], args: tuple[Any, ...], *,
                        limits: DocumentLimits, timeout_s: float) -> Any:
    """Run one job synchronously in a new worker process (for scripts and the CLI; the server
    uses the pool). A timeout kills the worker and raises :class:`WorkerTimeout`."""
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker, initargs=(limits,))
    pid: int | None = None
    try:
        with main_module_hidden():
            first = executor.submit(worker_pid)
        pid = first.result(timeout=START_TIMEOUT_S)
        outcome: JobOutcome = executor.submit(run_job, fn, args).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise WorkerTimeout(f"the job took longer than {timeout_s:g} s") from None
    except BrokenProcessPool:
        raise WorkerCrashed("the document worker process died") from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    if outcome.error is not None:
        raise outcome.error
    return outcome.value
