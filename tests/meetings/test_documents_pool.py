"""The worker pool: priorities, withdrawal, timeouts that replace one worker, clean close."""

from __future__ import annotations

import asyncio
import functools
import operator
import os
import signal
import time

import pytest

from meetings.documents import DocumentLimits, Priority, WorkerPool, WorkerTimeout
from meetings.documents.pool import PoolClosed, run_in_fresh_worker


def record(finished: list[str], name: str, _: object) -> None:
    finished.append(name)


@pytest.mark.asyncio
async def test_people_waiting_go_first_and_timeouts_replace_only_their_worker() -> None:
    pool = WorkerPool(DocumentLimits(), workers=1)
    await pool.start()
    try:
        finished: list[str] = []
        busy = pool.submit(time.sleep, 0.4, timeout_s=10)
        jobs = {
            "background-1": pool.submit(time.sleep, 0, timeout_s=10, priority=Priority.BACKGROUND),
            "background-2": pool.submit(time.sleep, 0, timeout_s=10, priority=Priority.BACKGROUND),
            "first-page": pool.submit(time.sleep, 0, timeout_s=10, priority=Priority.FIRST_PAGE),
            "viewer": pool.submit(time.sleep, 0, timeout_s=10, priority=Priority.INTERACTIVE),
        }
        withdrawn = pool.submit(time.sleep, 0, timeout_s=10, priority=Priority.BACKGROUND)
        withdrawn.future.cancel()
        pool.promote(jobs["background-2"], Priority.INTERACTIVE)
        for name, job in jobs.items():
            job.future.add_done_callback(functools.partial(record, finished, name))
        await asyncio.gather(busy.future, *(job.future for job in jobs.values()))
        assert finished == ["viewer", "background-2", "first-page", "background-1"]
        assert pool.stats().jobs == 5  # the withdrawn job never ran

        (pid,) = pool.pids()
        with pytest.raises(WorkerTimeout):
            await pool.run(time.sleep, 30, timeout_s=0.3)
        assert await pool.run(operator.add, 2, 3, timeout_s=10) == 5
        assert pool.pids() != (pid,)
        stats = pool.stats()
        assert (stats.timeouts, stats.restarts, stats.workers) == (1, 1, 1)
        assert stats.cpu_s >= 0

        (pid,) = pool.pids()
        os.kill(pid, signal.SIGKILL)  # an idle worker dies (OOM killer): the pool's own pid
        await asyncio.sleep(0.5)
        assert await pool.run(operator.add, 1, 1, timeout_s=10) == 2  # re-queued, not failed
        assert pool.pids() != (pid,) and pool.stats().crashes == 1
    finally:
        await pool.close()
    with pytest.raises(PoolClosed):
        pool.submit(time.sleep, 0, timeout_s=1)
    for pid in pool.pids():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_fresh_worker_times_out_too() -> None:
    limits = DocumentLimits()
    assert run_in_fresh_worker(operator.mul, (6, 7), limits=limits, timeout_s=30) == 42
    with pytest.raises(WorkerTimeout):
        run_in_fresh_worker(time.sleep, (30,), limits=limits, timeout_s=0.5)
