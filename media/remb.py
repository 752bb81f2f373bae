"""REMB throttling for aiortc's receivers: aiortc sends a REMB for *every* packet while its
delay-based detector says "overusing", and on a busy CPU (where arrival jitter looks like
overuse) that is one more datagram per packet received: measured in the 40-point benchmark,
~10 % of a media worker's CPU, which made the jitter worse."""

from __future__ import annotations

import time
from typing import Any

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci


class RembThrottle:
    """Lets a receiver's REMB through at most every ``interval_s``, or after ``urgent_s``
    when the estimate fell by more than ``drop`` since the last one sent (as libwebrtc's
    REMB throttling: a falling estimate must reach the sender soon, a steady one need not
    be repeated per packet). Other RTCP passes untouched."""

    __slots__ = ("drop", "interval_s", "last_at", "last_bps", "suppressed", "urgent_s")

    def __init__(self, *, interval_s: float = 0.2, urgent_s: float = 0.05,
                 drop: float = 0.03) -> None:
        self.interval_s = interval_s
        self.urgent_s = urgent_s
        self.drop = drop
        self.last_at = -1e9
        self.last_bps = 0
        self.suppressed = 0

    def allow(self, packet: Any, now: float | None = None) -> bool:
        if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP:
            return True
        now = time.monotonic() if now is None else now
        elapsed = now - self.last_at
        try:
            bps = unpack_remb_fci(packet.fci)[0]
        except ValueError:
            return True  # not a REMB: some other application feedback
        if elapsed >= self.interval_s or (
                elapsed >= self.urgent_s and bps < self.last_bps * (1 - self.drop)):
            self.last_at, self.last_bps = now, bps
            return True
        self.suppressed += 1
        return False
