"""media/loop_monitor.py: a loop blocked by real work shows up as lag and a stall in the next
report; a quiet loop reports no stall; a failing observer does not end the measurement; close()
ends the task."""

from __future__ import annotations

import asyncio
import time

import pytest

from media.loop_monitor import LoopMonitor, LoopReport


async def _reports(monitor: LoopMonitor, got: list[LoopReport], count: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(got) >= count


async def test_a_blocked_loop_is_reported_as_a_stall() -> None:
    got: list[LoopReport] = []
    monitor = LoopMonitor(got.append, period_s=0.01, report_s=0.2)
    monitor.start()
    try:
        await _reports(monitor, got, 1)
        quiet = len(got)
        time.sleep(0.15)  # noqa: ASYNC251 - stops the loop, as a full GC or a burst of work does
        await _reports(monitor, got, quiet + 2)
        blocked = got[quiet]
        assert blocked.lag_max_s >= 0.12 and blocked.stalls == 1
        after = got[quiet + 1]
        assert after.stalls == 0 and after.lag_max_s < 0.05  # the counts start afresh
    finally:
        await monitor.close()
    assert monitor._task is None


async def test_a_quiet_loop_has_no_stall_and_a_broken_observer_is_survived() -> None:
    got: list[LoopReport] = []

    def observer(report: LoopReport) -> None:
        got.append(report)
        if len(got) == 1:
            raise RuntimeError("observer bug")

    monitor = LoopMonitor(observer, period_s=0.01, report_s=0.1)
    monitor.start()
    try:
        await _reports(monitor, got, 3)
        assert all(r.stalls == 0 for r in got[1:])
    finally:
        await monitor.close()


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError):
        LoopMonitor(lambda r: None, period_s=0)
    with pytest.raises(ValueError):
        LoopMonitor(lambda r: None, period_s=1.0, report_s=0.5)


def test_node_load_sums_stalls_of_several_processes_and_starts_afresh() -> None:
    from media.loop_monitor import NodeLoad

    load = NodeLoad()
    load.add(LoopReport(0.004, 0))  # the server process
    load.add(LoopReport(0.12, 2))  # a media worker
    load.add(LoopReport(0.06, 1))  # another worker
    taken = load.take()
    assert (taken["stalls"], taken["lag_max_ms"], taken["overloaded"]) == (3, 120.0, True)
    assert taken["seconds"] >= 0
    quiet = load.take()
    assert (quiet["stalls"], quiet["lag_max_ms"], quiet["overloaded"]) == (0, 0.0, False)
