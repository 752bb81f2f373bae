"""The one permission table: who may do what (phân quyền).

Every REST route and every WebSocket message names an :class:`Action`; ``server/`` calls
:func:`require` before it acts. A rule is a set of subjects (the five user roles, plus
``point`` for bridge-point devices) and a scope that narrows it to a meeting's own people.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import Forbidden, Unauthenticated
from .models import Meeting, Principal, Role


class Action(str, enum.Enum):
    USERS_MANAGE = "users.manage"
    POINTS_VIEW = "points.view"
    POINTS_MANAGE = "points.manage"
    MEETING_CREATE = "meeting.create"
    MEETING_LIST = "meeting.list"
    MEETING_VIEW = "meeting.view"
    MEETING_EDIT = "meeting.edit"
    MEETING_INVITE = "meeting.invite"
    MEETING_CONTROL = "meeting.control"  # open / close
    MEETING_JOIN = "meeting.join"
    CHAT_SEND = "chat.send"
    ACCOUNT_SELF = "account.self"  # a user's own account: change password


class Scope(str, enum.Enum):
    ANY = "any"  # the subject alone decides
    PARTICIPANT = "participant"  # admin, the meeting's staff, or an invited point (or its users)
    STAFF = "staff"  # admin, or the meeting's chair or secretary
    CHAIR = "chair"  # admin, or the meeting's chair


POINT = "point"
ADMIN, CHAIR, SECRETARY, DELEGATE, OBSERVER = (r.value for r in Role)
EVERYONE = frozenset({ADMIN, CHAIR, SECRETARY, DELEGATE, OBSERVER, POINT})
USERS = frozenset({ADMIN, CHAIR, SECRETARY, DELEGATE, OBSERVER})


@dataclass(frozen=True)
class Rule:
    subjects: frozenset[str]
    scope: Scope = Scope.ANY


PERMISSIONS: dict[Action, Rule] = {
    Action.USERS_MANAGE: Rule(frozenset({ADMIN})),
    Action.POINTS_VIEW: Rule(frozenset({ADMIN, CHAIR, SECRETARY})),
    Action.POINTS_MANAGE: Rule(frozenset({ADMIN})),
    Action.MEETING_CREATE: Rule(frozenset({ADMIN, CHAIR, SECRETARY})),
    Action.MEETING_LIST: Rule(EVERYONE),
    Action.MEETING_VIEW: Rule(EVERYONE, Scope.PARTICIPANT),
    Action.MEETING_EDIT: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.MEETING_INVITE: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.MEETING_CONTROL: Rule(frozenset({ADMIN, CHAIR}), Scope.CHAIR),
    Action.MEETING_JOIN: Rule(EVERYONE, Scope.PARTICIPANT),
    Action.CHAT_SEND: Rule(EVERYONE - {OBSERVER}, Scope.PARTICIPANT),
    Action.ACCOUNT_SELF: Rule(USERS),
}


@dataclass(frozen=True)
class MeetingScope:
    """What a meeting-scoped check needs to know about the meeting."""

    meeting: Meeting
    invited_point_ids: frozenset[int]


def subject_of(principal: Principal | None) -> str | None:
    if principal is None:
        return None
    if principal.kind == POINT:
        return POINT
    return principal.role.value if principal.role else None


def _in_scope(principal: Principal, rule: Rule, ctx: MeetingScope | None) -> bool:
    if rule.scope is Scope.ANY:
        return True
    if principal.user is not None and principal.user.role is Role.ADMIN:
        return True
    if ctx is None:
        return False
    meeting = ctx.meeting
    if principal.meeting_id is not None and principal.meeting_id != meeting.id:
        return False  # an invitation link only opens its own meeting
    user_id = principal.user.id if principal.user else None
    is_chair = user_id is not None and user_id == meeting.chair_id
    is_staff = is_chair or (user_id is not None and user_id == meeting.secretary_id)
    if rule.scope is Scope.CHAIR:
        return is_chair
    if rule.scope is Scope.STAFF:
        return is_staff
    # PARTICIPANT
    if is_staff:
        return True
    if principal.point is not None:
        return principal.point.id in ctx.invited_point_ids
    return False


def allowed(principal: Principal | None, action: Action, ctx: MeetingScope | None = None) -> bool:
    rule = PERMISSIONS[action]
    subject = subject_of(principal)
    if subject is None or subject not in rule.subjects:
        return False
    assert principal is not None
    return _in_scope(principal, rule, ctx)


def require(principal: Principal | None, action: Action, ctx: MeetingScope | None = None) -> None:
    """Raise :class:`Unauthenticated` or :class:`Forbidden` unless ``allowed``."""
    if principal is None:
        raise Unauthenticated("authentication required")
    if not allowed(principal, action, ctx):
        raise Forbidden(f"not allowed: {action.value}", details={"action": action.value})
