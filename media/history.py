"""Recently sent packets of one outgoing stream, for NACK retransmission, with a budget
so that a storm of NACKs can't turn into a storm of retransmissions."""

from __future__ import annotations

import time


class PacketHistory:
    """A fixed ring of the last ``size`` packets sent (header and payload kept apart so that
    payload bytes are shared with the source and every other sink, not copied).

    Memory is bounded by construction: ``size`` slots, whatever the subscriber does."""

    __slots__ = (
        "_header",
        "_mask",
        "_payload",
        "_rate",
        "_resent_at",
        "_seq",
        "_stamp",
        "_tokens",
    )

    def __init__(self, size: int, retransmits_per_s: float) -> None:
        self._mask = size - 1
        self._seq: list[int] = [-1] * size
        self._header: list[bytes] = [b""] * size
        self._payload: list[bytes] = [b""] * size
        self._resent_at: list[float] = [0.0] * size
        self._rate = retransmits_per_s
        self._tokens = retransmits_per_s
        self._stamp = time.monotonic()

    def __len__(self) -> int:
        return len(self._seq)

    def put(self, sequence_number: int, header: bytes, payload: bytes) -> None:
        i = sequence_number & self._mask
        self._seq[i] = sequence_number
        self._header[i] = header
        self._payload[i] = payload
        self._resent_at[i] = 0.0

    def get(self, sequence_number: int) -> tuple[bytes, bytes] | None:
        i = sequence_number & self._mask
        if self._seq[i] != sequence_number:
            return None
        return self._header[i], self._payload[i]

    def may_retransmit(self, sequence_number: int, min_gap_s: float = 0.02) -> bool:
        """Whether to resend a packet that :meth:`get` found: False when the budget is spent
        or it was resent less than ``min_gap_s`` ago (a duplicate NACK). Spends budget."""
        i = sequence_number & self._mask
        now = time.monotonic()
        if now - self._resent_at[i] < min_gap_s:
            return False
        self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self._resent_at[i] = now
        return True

    def clear(self) -> None:
        for i in range(len(self._seq)):
            self._seq[i] = -1
            self._header[i] = b""
            self._payload[i] = b""
