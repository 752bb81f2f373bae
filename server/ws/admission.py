"""Admission control (kiểm soát số kết nối): how many may be in a meeting, and on a node.

A pure policy, kept apart from the rooms so it can be tested alone. Each meeting has a cap of
simultaneous participants (``signalling.max_participants_per_meeting``, counted in the shared
presence store, so it holds across nodes; a participant is a bridge point or a user, however
many windows or devices it has open) and each node a cap of sessions in meetings
(``signalling.max_connections_per_node``); 0 means no cap.

Precedence: the last places of a meeting are kept for the meeting's staff (chair, secretary,
admins) and the invited bridge points (device tokens, invitation links, users at an invited
point). Observers are refused first: when ``count >= cap - reserve`` with ``reserve`` 10 % of
the cap (at least 1, and always less than the cap); everyone else only when ``count >= cap``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from meetings.models import Principal, Role
from meetings.permissions import MeetingScope
from meetings.presence import PresenceEntry

MEETING_FULL = "meeting_full"
NODE_FULL = "node_full"


@dataclass(frozen=True)
class Refusal:
    """Why a join is refused: ``reason`` is the error code, ``cap`` the limit that was hit."""

    reason: str
    cap: int


def reserve(cap: int) -> int:
    """The places only priority participants may take: 10 % of ``cap``, at least 1 (< cap)."""
    if cap <= 1:
        return 0
    return min(max(1, cap // 10), cap - 1)


def has_priority(principal: Principal, scope: MeetingScope | None = None) -> bool:
    """Staff and invited points (and their users) may use the reserved places; observers not.

    Only principals already allowed to join are asked, so a point here is an invited one.
    """
    user = principal.user
    if user is None:
        return True  # a bridge point's device or invitation link
    if user.role is Role.ADMIN:
        return True
    if scope is not None and user.id in (scope.meeting.chair_id, scope.meeting.secretary_id):
        return True
    return user.role is not Role.OBSERVER


def identity(entry: PresenceEntry) -> tuple[str, str]:
    """Who a presence entry is, for counting places: a bridge point (its devices, invitation
    link and every window of its room page take one place) or a user."""
    if entry.user is not None:
        return ("user", entry.user.username)
    return ("point", entry.point.code if entry.point is not None else entry.key)


def count_others(entries: Iterable[PresenceEntry], joining: PresenceEntry) -> int:
    """Participants already in the meeting, not counting the one asking to join (a second
    window or device of the same point or user does not take a second place)."""
    mine = identity(joining)
    return len({identity(e) for e in entries if e.key != joining.key} - {mine})


def over(count: int, cap: int, priority: bool) -> bool:
    """Whether one more participant (``count`` others already in) exceeds ``cap``."""
    if cap <= 0:
        return False
    limit = cap if priority else cap - reserve(cap)
    return count >= limit


def decide(*, meeting_count: int, meeting_cap: int, node_count: int, node_cap: int,
           priority: bool) -> Refusal | None:
    """None to admit, else the :class:`Refusal`; counts exclude the one asking to join."""
    if over(meeting_count, meeting_cap, priority):
        return Refusal(MEETING_FULL, meeting_cap)
    if over(node_count, node_cap, priority):
        return Refusal(NODE_FULL, node_cap)
    return None
