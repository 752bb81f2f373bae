"""How late a process's event loop wakes up: the one figure that tells a saturated media
process from a bad link. A stalled loop stops every packet that process forwards, so a point
hears an audio gap that neither its link nor the publisher caused.

A :class:`LoopMonitor` owns one task that sleeps ``period_s`` and measures by how much each
sleep overran; every ``report_s`` it hands ``on_report`` a :class:`LoopReport` (the worst
overrun since the last report and how many wakeups were later than ``stall_s``), then starts
counting afresh. Cost: one timer wakeup per period (50 per second by default), well under 1 %
of a core. Used by media workers (reported to the server over the control channel) and by the
server process itself (the packet hub); the server turns both into ``/metrics`` series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

PERIOD_S = 0.02
REPORT_S = 1.0
STALL_S = 0.05
"A wakeup this late is a stall: at 50 ms a point's jitter buffer is already being drained."


@dataclass(frozen=True, slots=True)
class LoopReport:
    lag_max_s: float
    "The worst overrun of one sleep since the previous report (seconds)."
    stalls: int
    "Wakeups later than ``STALL_S`` since the previous report."


class LoopMonitor:
    """Measures this event loop's wakeup lag (see module doc). :meth:`start` in a running
    loop; :meth:`close` cancels and awaits the task."""

    def __init__(self, on_report: Callable[[LoopReport], None], *, period_s: float = PERIOD_S,
                 report_s: float = REPORT_S, stall_s: float = STALL_S) -> None:
        if period_s <= 0 or report_s < period_s:
            raise ValueError("period_s > 0 and report_s >= period_s")
        self.on_report = on_report
        self.period_s = period_s
        self.report_s = report_s
        self.stall_s = stall_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-monitor")

    async def _run(self) -> None:
        clock = time.monotonic
        lag_max, stalls = 0.0, 0
        next_report = clock() + self.report_s
        while True:
            before = clock()
            await asyncio.sleep(self.period_s)
            now = clock()
            lag = now - before - self.period_s
            lag_max = max(lag_max, lag)
            if lag > self.stall_s:
                stalls += 1
            if now >= next_report:
                next_report = now + self.report_s
                report, lag_max, stalls = LoopReport(max(lag_max, 0.0), stalls), 0.0, 0
                try:
                    self.on_report(report)
                except Exception:  # a broken observer must not end the measurement
                    logger.exception("loop monitor: report failed")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class NodeLoad:
    """Stalls and worst lag of several processes' reports (a node: the server process and its
    media workers) between two :meth:`take` calls, for the chair's monitoring view."""

    def __init__(self) -> None:
        self._stalls = 0
        self._lag_max_s = 0.0
        self._since = time.monotonic()

    def add(self, report: LoopReport) -> None:
        self._stalls += report.stalls
        self._lag_max_s = max(self._lag_max_s, report.lag_max_s)

    def take(self) -> dict[str, Any]:
        """``{stalls, lag_max_ms, seconds, overloaded}`` since the previous call; starts afresh."""
        now = time.monotonic()
        out = {"stalls": self._stalls, "lag_max_ms": round(1000 * self._lag_max_s, 1),
               "seconds": round(now - self._since, 1), "overloaded": self._stalls > 0}
        self._stalls, self._lag_max_s, self._since = 0, 0.0, now
        return out
