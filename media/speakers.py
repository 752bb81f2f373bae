"""Active speaker detection (người đang nói) from RFC 6464 audio levels, without decoding.

Every audio source gets a :class:`LevelMeter` (a level observer of the source, not a packet
sink: one cheap call per packet, or per summary a worker's link sends for audio nobody else
pulls) that keeps an exponentially smoothed level in dBov. :class:`ActiveSpeakers` ranks the sources with
hysteresis: an incumbent keeps its place while it stays above the threshold, and a challenger
only replaces the weakest incumbent when it is louder by ``hysteresis_db``; a source that
stops sending decays to silence.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from media.packet import MediaPacket
from media.source import Source

SILENCE_DB = -127.0


class LevelMeter:
    """Smoothed audio level of one source (a :class:`media.source.PacketSink`)."""

    __slots__ = ("_alpha", "_at", "_level", "source_id")

    def __init__(self, source_id: str, *, alpha: float = 0.1) -> None:
        self.source_id = source_id
        self._level = SILENCE_DB
        self._at = 0.0
        self._alpha = alpha

    def on_level(self, byte: int, count: int = 1) -> None:
        """``count`` packets of mean level ``byte`` (RFC 6464, -dBov): the same smoothing as
        ``count`` packets one by one."""
        dbov = -float(byte & 0x7F)
        weight = self._alpha if count == 1 else 1.0 - (1.0 - self._alpha) ** count
        self._level += weight * (dbov - self._level)
        self._at = time.monotonic()

    def on_packet(self, source: Source, packet: MediaPacket, ntp_time: int) -> None:
        if packet.audio_level is not None:
            self.on_level(packet.audio_level)

    def level(self, now: float | None = None, *, stale_s: float = 0.5) -> float:
        """The smoothed level in dBov (0 loudest, -127 silence); silence when stale."""
        now = time.monotonic() if now is None else now
        return self._level if now - self._at <= stale_s else SILENCE_DB


class ActiveSpeakers:
    """The loudest sources, ranked with hysteresis. One per meeting; call :meth:`update`
    periodically (e.g. every 0.3 s)."""

    def __init__(self, *, size: int = 4, threshold_db: float = -55.0,
                 hysteresis_db: float = 6.0) -> None:
        self.size = size
        self.threshold_db = threshold_db
        self.hysteresis_db = hysteresis_db
        self._meters: dict[str, tuple[Source, LevelMeter]] = {}
        self._active: list[str] = []

    @property
    def active(self) -> list[str]:
        """Source ids of the current speakers, loudest first (as of the last update)."""
        return list(self._active)

    def track(self, source: Source) -> None:
        """Start measuring an audio source."""
        if source.source_id in self._meters or source.kind != "audio" or source.closed:
            return
        meter = LevelMeter(source.source_id)
        source.add_level_observer(meter.on_level)
        self._meters[source.source_id] = (source, meter)

    def forget(self, source_id: str) -> None:
        entry = self._meters.pop(source_id, None)
        if entry is not None:
            entry[0].remove_level_observer(entry[1].on_level)
        if source_id in self._active:
            self._active.remove(source_id)

    def level(self, source_id: str) -> float:
        entry = self._meters.get(source_id)
        return entry[1].level() if entry else SILENCE_DB

    def levels(self) -> dict[str, float]:
        now = time.monotonic()
        return {sid: meter.level(now) for sid, (_, meter) in self._meters.items()}

    def update(self) -> bool:
        """Re-rank; True when the set of active speakers changed."""
        levels = self.levels()
        keep_above = self.threshold_db - self.hysteresis_db
        active = [sid for sid in self._active if levels.get(sid, SILENCE_DB) > keep_above]
        challengers = sorted((sid for sid, lv in levels.items()
                              if sid not in active and lv > self.threshold_db),
                             key=lambda sid: levels[sid], reverse=True)
        for sid in challengers:
            if len(active) < self.size:
                active.append(sid)
                continue
            weakest = min(active, key=lambda s: levels.get(s, SILENCE_DB))
            if levels[sid] > levels.get(weakest, SILENCE_DB) + self.hysteresis_db:
                active[active.index(weakest)] = sid
        active.sort(key=lambda s: levels.get(s, SILENCE_DB), reverse=True)
        changed = set(active) != set(self._active)
        self._active = active
        return changed

    def ranked(self, exclude: Iterable[str] = ()) -> list[str]:
        """The active speakers minus ``exclude`` (e.g. a subscriber's own sources)."""
        skip = set(exclude)
        return [sid for sid in self._active if sid not in skip]

    def close(self) -> None:
        for sid in list(self._meters):
            self.forget(sid)
