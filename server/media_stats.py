"""Link quality of a meeting's points (``media.stats`` for the chair's console) and the media
series of ``/metrics``.

Per point: round trip time and loss from the subscriber's receiver reports about its main
slot (else any slot), bitrate (what it publishes, else what it receives), camera frame rate
(``SourceStats.frames``: RTP marker bits counted where the source is fed, i.e. in its media
worker, and mirrored here: nothing attaches to a video source just to count, so a camera
nobody watches never crosses its worker's link), the rendition its main slot carries.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from meetings.permissions import MeetingScope
from meetings.registry import Registry

from .media_room import MeetingMedia, Member
from .metrics import Metrics
from .ws.session import Session

MAX_POINT_SERIES = 1000
"""At most this many (meeting, point) label sets in the per-point gauges of one node."""


@dataclass
class StatsState:
    """What the previous round saw, to turn counters into rates."""

    at: float = field(default_factory=time.monotonic)
    source_bytes: dict[str, int] = field(default_factory=dict)
    sink_bytes: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    series: set[tuple[str, str]] = field(default_factory=set)
    renditions: dict[tuple[str, str], str] = field(default_factory=dict)
    """(meeting, point) → the rendition label set in ``diemcau_media_point_rendition``."""
    invited: tuple[frozenset[int], dict[str, str]] = (frozenset(), {})
    """Invited point ids and their code → name (refetched when the invitations change)."""


async def invited_points(registry: Registry, scope: MeetingScope,
                         state: StatsState) -> dict[str, str]:
    """Code → name of the meeting's invited points (and its host), cached per invitation set."""
    ids = scope.invited_point_ids | ({scope.meeting.host_point_id}
                                     if scope.meeting.host_point_id else set())
    if ids != state.invited[0]:
        points = await registry.list()
        state.invited = (frozenset(ids), {p.code: p.name for p in points if p.id in ids})
    return state.invited[1]


def _offline(code: str | None, label: str) -> dict[str, Any]:
    return {"point_code": code, "label": label, "online": False, "publishing": False,
            "rtt_ms": None, "loss_pct": None, "bitrate_kbps": None, "fps": None,
            "rendition": None, "receives_main": False}


def collect(media: MeetingMedia, state: StatsState, metrics: Metrics, present: list[Session],
            invited: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One round: per-point rows for ``media.stats``; updates rates and metrics."""
    now = time.monotonic()
    dt = max(now - state.at, 1e-3)
    state.at = now
    rates: dict[str, float] = {}
    live = {sid: s for sid, s in media.room.sources.items() if not s.closed}
    for sid, source in live.items():
        before = state.source_bytes.get(sid, source.stats.bytes)
        rates[sid] = max(0, source.stats.bytes - before) * 8 / dt
        state.source_bytes[sid] = source.stats.bytes
    for sid in [s for s in state.source_bytes if s not in live]:
        state.source_bytes.pop(sid, None)
        state.frames.pop(sid, None)
    media.note_rates(rates)

    rows: dict[str, dict[str, Any]] = {}
    packets = octets = 0
    publishers = 0
    for member in media.members.values():
        published = member.published()
        publishing = bool(published)
        publishers += publishing
        row = _row(member, published, rates, state, dt, media, live)
        key = member.point_code or f"session:{member.key}"
        if key not in rows or (publishing and not rows[key]["publishing"]):
            rows[key] = row
        for mid, sink in member.peer.sinks.items():
            was_p, was_b = member.counted.get(mid, (0, 0))
            p, b = sink.stats.packets, sink.stats.bytes
            if p >= was_p and b >= was_b:
                packets += p - was_p
                octets += b - was_b
            member.counted[mid] = (p, b)
    for session in present:
        if session.key in media.members:
            continue
        point = session.principal.point
        key = point.code if point else f"session:{session.key}"
        rows.setdefault(key, {**_offline(point.code if point else None,
                                         session.principal.label), "online": True})
    for code, name in (invited or {}).items():
        rows.setdefault(code, _offline(code, name))
    _export(media, state, metrics, rows, publishers, packets, octets)
    return sorted(rows.values(), key=lambda r: (r["point_code"] or "~", r["label"]))


def _row(member: Member, published: dict[str, str], rates: dict[str, float],
         state: StatsState, dt: float, media: MeetingMedia,
         live: dict[str, Any]) -> dict[str, Any]:
    sinks = member.peer.sinks
    mains = member.recv_mids("main")
    ordered = [sinks[m] for m in mains] + [s for m, s in sinks.items() if m not in mains]
    report = next((s.stats for s in ordered if s.stats.fraction_lost is not None), None)
    if published:
        bitrate = sum(rates.get(sid, 0.0) for sid in published.values())
    else:
        bitrate = 0.0
        for mid, sink in sinks.items():
            key = f"{member.key}:{mid}"
            before = state.sink_bytes.get(key, sink.stats.bytes)
            bitrate += max(0, sink.stats.bytes - before) * 8 / dt
            state.sink_bytes[key] = sink.stats.bytes
    fps = None
    camera = next((published[r] for r in ("camera", "camera-low", "camera-thumb")
                   if r in published), None)
    if camera is not None and camera in live and live[camera].kind == "video":
        frames = live[camera].stats.frames
        before = state.frames.get(camera, frames)
        fps = round((frames - before) / dt, 1)
        state.frames[camera] = frames
    rendition, receiving = media.main_rendition(member)
    return {
        "point_code": member.point_code, "label": member.label, "online": True,
        "publishing": bool(published),
        "rtt_ms": round(report.rtt_ms, 1) if report and report.rtt_ms is not None else None,
        "loss_pct": round(report.fraction_lost * 100, 1)
        if report and report.fraction_lost is not None else None,
        "bitrate_kbps": round(bitrate / 1000, 1), "fps": fps,
        "rendition": rendition, "receives_main": receiving,
    }


def _export(media: MeetingMedia, state: StatsState, metrics: Metrics,
            rows: dict[str, dict[str, Any]], publishers: int, packets: int, octets: int) -> None:
    meeting = str(media.meeting_id)
    metrics.media_publishers.labels(meeting).set(publishers)
    metrics.media_subscribers.labels(meeting).set(len(media.members))
    metrics.media_forwarded_packets.inc(packets)
    metrics.media_forwarded_bytes.inc(octets)
    seen: set[tuple[str, str]] = set()
    for row in rows.values():
        code = row["point_code"]
        if code is None:
            continue
        series = (meeting, str(code))
        if series not in state.series and len(state.series) >= MAX_POINT_SERIES:
            continue
        seen.add(series)
        _export_point(metrics, state, series, row)
    for series in state.series - seen:
        _drop(metrics, state, series)
    state.series = seen


def _export_point(metrics: Metrics, state: StatsState, series: tuple[str, str],
                  row: dict[str, Any]) -> None:
    """The monitoring page's row of one point as gauges; a figure not known now is removed
    (a scrape never shows an old value as current)."""
    metrics.media_point_online.labels(*series).set(1 if row["online"] else 0)
    figures = ((metrics.media_point_loss, row["loss_pct"], 0.01),
               (metrics.media_point_rtt, row["rtt_ms"], 0.001),
               (metrics.media_point_bitrate, row["bitrate_kbps"], 1000.0),
               (metrics.media_point_fps, row["fps"], 1.0))
    for gauge, value, scale in figures:
        if value is None or not row["online"]:
            with contextlib.suppress(KeyError):
                gauge.remove(*series)
        else:
            gauge.labels(*series).set(value * scale)
    metrics.media_point_receives_main.labels(*series).set(1 if row["receives_main"] else 0)
    rendition = str(row["rendition"]) if row["online"] and row["rendition"] else None
    if state.renditions.get(series) != rendition:
        _forget_rendition(metrics, state, series)
    if rendition is not None:
        metrics.media_point_rendition.labels(*series, rendition).set(1)
        state.renditions[series] = rendition


def _forget_rendition(metrics: Metrics, state: StatsState, series: tuple[str, str]) -> None:
    rendition = state.renditions.pop(series, None)
    if rendition is not None:
        with contextlib.suppress(KeyError):
            metrics.media_point_rendition.remove(*series, rendition)


POINT_GAUGES = ("media_point_online", "media_point_loss", "media_point_rtt", "media_point_bitrate",
                "media_point_fps", "media_point_receives_main")


def _drop(metrics: Metrics, state: StatsState, series: tuple[str, str]) -> None:
    for name in POINT_GAUGES:
        with contextlib.suppress(KeyError):
            getattr(metrics, name).remove(*series)
    _forget_rendition(metrics, state, series)


def forget(media: MeetingMedia, state: StatsState, metrics: Metrics) -> None:
    """The meeting's media closed: remove its series."""
    meeting = str(media.meeting_id)
    for gauge in (metrics.media_publishers, metrics.media_subscribers):
        with contextlib.suppress(KeyError):
            gauge.remove(meeting)
    for series in state.series:
        _drop(metrics, state, series)
    state.series = set()
    state.frames.clear()
    state.source_bytes.clear()
