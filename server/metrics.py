"""Prometheus metrics of one node (a registry per app, so tests can run several apps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LOOP_LAG_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter("diemcau_http_requests_total", "HTTP requests handled",
                                     ["method", "route", "status"], registry=r)
        self.http_latency = Histogram("diemcau_http_request_seconds", "HTTP request latency",
                                      ["route"], registry=r)
        self.logins = Counter("diemcau_logins_total", "Login attempts", ["result"], registry=r)
        self.ws_connections = Gauge("diemcau_ws_connections", "Open WebSocket connections", registry=r)
        self.ws_messages = Counter("diemcau_ws_messages_total", "WebSocket messages received",
                                   ["type", "result"], registry=r)
        self.meeting_participants = Gauge("diemcau_meeting_participants",
                                          "Sessions joined to meetings on this node", ["meeting"], registry=r)
        self.bus_events = Counter("diemcau_bus_events_total", "Bus events delivered to this node", registry=r)
        # media (SFU): per-meeting counts, forwarding totals, per-point link quality (label
        # sets bounded by server.media_stats.MAX_POINT_SERIES and removed when points leave)
        self.media_publishers = Gauge("diemcau_media_publishers",
                                      "Sessions publishing media, per meeting", ["meeting"], registry=r)
        self.media_subscribers = Gauge("diemcau_media_subscribers",
                                       "Sessions with a media connection, per meeting", ["meeting"],
                                       registry=r)
        self.media_forwarded_packets = Counter("diemcau_media_forwarded_packets_total",
                                               "RTP packets forwarded to subscribers", registry=r)
        self.media_forwarded_bytes = Counter("diemcau_media_forwarded_bytes_total",
                                             "RTP payload bytes forwarded to subscribers", registry=r)
        self.media_point_loss = Gauge("diemcau_media_point_loss_ratio",
                                      "Packet loss a point reports on its main stream (0..1)",
                                      ["meeting", "point"], registry=r)
        self.media_point_rtt = Gauge("diemcau_media_point_rtt_seconds",
                                     "Round trip time to a point", ["meeting", "point"], registry=r)
        # the rest of the monitoring page's columns (same label bounds as above)
        self.media_point_online = Gauge("diemcau_media_point_online",
                                        "1 while an invited point is in the meeting, 0 while offline",
                                        ["meeting", "point"], registry=r)
        self.media_point_bitrate = Gauge("diemcau_media_point_bitrate_bps",
                                         "What a point publishes (else receives), bit/s",
                                         ["meeting", "point"], registry=r)
        self.media_point_fps = Gauge("diemcau_media_point_fps", "Frame rate of a point's camera",
                                     ["meeting", "point"], registry=r)
        self.media_point_receives_main = Gauge("diemcau_media_point_receives_main",
                                               "1 while the point receives the main screen",
                                               ["meeting", "point"], registry=r)
        self.media_point_rendition = Gauge("diemcau_media_point_rendition",
                                           "1 for the rendition a point's main screen carries",
                                           ["meeting", "point", "rendition"], registry=r)
        self.admission_refused = Counter("diemcau_admission_refused_total",
                                         "Joins refused by a cap (meeting_full, node_full)",
                                         ["reason"], registry=r)
        # event loops: the server process (WebSocket hub, packet hub) and each media worker
        self.loop_lag = Histogram("diemcau_event_loop_lag_seconds",
                                  "Worst event-loop wakeup lag of one second, per process kind",
                                  ["process"], buckets=LOOP_LAG_BUCKETS, registry=r)
        self.loop_stalls = Counter("diemcau_event_loop_stalls_total",
                                   "Event-loop wakeups more than 50 ms late, per process kind",
                                   ["process"], registry=r)

    def observe_loop(self, process: str, lag_max_s: float, stalls: int) -> None:
        """One :class:`media.loop_monitor.LoopReport` of a ``process`` kind (``server`` or
        ``media_worker``)."""
        self.loop_lag.labels(process).observe(lag_max_s)
        if stalls:
            self.loop_stalls.labels(process).inc(stalls)
