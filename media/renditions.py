"""Renditions instead of simulcast: a publisher sends up to four encodings of its camera as
separate tracks, and each subscriber's slot carries the one its layout and link allow.

:class:`LinkQuality` turns a subscriber's receiver reports (fraction lost) and REMB into a
*level*: -1 = ``camera-hd`` (1280x720, only the main screen), 0 = ``camera`` (640x360, where
every subscriber starts), 1 = ``camera-low``, 2 = ``camera-thumb``. One report with loss above
5% moves it one step down (so do two with a REMB far below the bitrate); it steps back up
after ``recover_reports`` good reports in a row and at least ``hold_s`` after the last change,
up to ``camera-hd`` when the main-screen point publishes it (HD is earned by a good link, never
given on trust). The switch itself happens at the next keyframe (the slot switch of
:class:`media.sink.Sink`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

RENDITIONS: tuple[str, ...] = ("camera-hd", "camera", "camera-low", "camera-thumb")
"Camera renditions, best first (roles of the publisher's m-lines)."
HD = "camera-hd"
HD_LEVEL = -1
"The level of ``camera-hd``: a level ``n`` is ``RENDITIONS[n + 1]``."
LOSS_DOWN = 0.05
LOSS_UP = 0.02
REMB_DOWN = 0.5
"Two reports in a row whose REMB is below half the current rendition's bitrate: step down."
REMB_UP = 0.6
"""Step up only if REMB reaches this share of the higher rendition's bitrate. Receivers'
estimates stay near what they get, so going up is a probe: loss decides if it holds."""


def pick(available: Mapping[str, str], preferred: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of ``preferred`` that is published, else the nearest other rendition:
    ``(rendition, source_id)``."""
    for name in preferred:
        if name in available:
            return name, available[name]
    for name in RENDITIONS:
        if name in available:
            return name, available[name]
    return None


def level_of(rendition: str) -> int:
    """The link level of a rendition (``camera-hd`` -1 … ``camera-thumb`` 2)."""
    return RENDITIONS.index(rendition) + HD_LEVEL


def preference(level: int) -> tuple[str, ...]:
    """Renditions to try for a main slot at link ``level``: that one, then lower, then
    higher (a lower one that is not published must not leave the slot empty)."""
    index = max(0, min(level - HD_LEVEL, len(RENDITIONS) - 1))
    return RENDITIONS[index:] + tuple(reversed(RENDITIONS[:index]))


GRID_PREFERENCE: tuple[str, ...] = ("camera-thumb", "camera-low", "camera")
"Grid thumbnails: smallest first, and never ``camera-hd`` (see :func:`pick_grid`)."


def pick_grid(available: Mapping[str, str]) -> tuple[str, str] | None:
    """A grid tile's rendition: :data:`GRID_PREFERENCE`, never the HD one."""
    return pick({r: s for r, s in available.items() if r != HD}, GRID_PREFERENCE)


@dataclass
class LinkQuality:
    """The rendition level one subscriber's link supports, from its reports."""

    level: int = 0
    good: int = 0
    congested: int = 0
    changed_at: float = 0.0
    last_reports: int = -1
    recover_reports: int = 4
    hold_s: float = 4.0

    def observe(self, *, reports: int, fraction_lost: float | None, remb_bps: int | None,
                current_bps: float | None, higher_bps: float | None,
                max_level: int = len(RENDITIONS) - 1 + HD_LEVEL, min_level: int = 0,
                now: float | None = None) -> bool:
        """Feed the latest report of the subscriber's main slot; True when the level changed.
        ``reports`` counts reports received so far (an unchanged count is ignored);
        ``max_level`` is the lowest rendition the publisher sends, ``min_level`` the best one
        it may go up to (``HD_LEVEL`` when the main-screen point publishes ``camera-hd``)."""
        if reports == self.last_reports or fraction_lost is None:
            return False
        self.last_reports = reports
        now = time.monotonic() if now is None else now
        self.level = max(self.level, min_level)  # nothing better is published: no free step
        if remb_bps and current_bps and remb_bps < REMB_DOWN * current_bps:
            self.congested += 1
        else:
            self.congested = 0
        if fraction_lost > LOSS_DOWN or self.congested >= 2:
            self.good = self.congested = 0
            if self.level < max_level:
                self.level += 1
                self.changed_at = now
                return True
            return False
        room = not remb_bps or not higher_bps or remb_bps >= REMB_UP * higher_bps
        if fraction_lost <= LOSS_UP and room:
            self.good += 1
        else:
            self.good = 0
        if self.level > min_level and self.good >= self.recover_reports and (
                now - self.changed_at >= self.hold_s):
            self.level -= 1
            self.good = 0
            self.changed_at = now
            return True
        return False
