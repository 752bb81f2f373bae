"""Sliding-window counters (login attempts) and token buckets (WebSocket messages)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from meetings.errors import RateLimited


@dataclass
class SlidingWindow:
    """At most ``limit`` events per ``window_s`` for each key; memory bounded by ``max_keys``."""

    limit: int
    window_s: float = 60.0
    max_keys: int = 100_000
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def _prune(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._events.pop(next(iter(self._events)))
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        return events

    def check(self, key: str, *, now: float | None = None) -> None:
        """Raise :class:`RateLimited` when ``key`` already used its quota."""
        now = time.monotonic() if now is None else now
        events = self._prune(key, now)
        if len(events) >= self.limit:
            raise RateLimited("too many attempts; wait a moment", retry_after_s=events[0] + self.window_s - now)

    def hit(self, key: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._prune(key, now).append(now)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)


@dataclass
class TokenBucket:
    """``rate`` tokens per second, bursts up to ``burst``."""

    rate: float
    burst: float
    _tokens: float = -1.0
    _stamp: float = 0.0

    def take(self, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self._tokens < 0:
            self._tokens, self._stamp = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
