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
    # meeting conduct: floor, attendance, votes, minutes, audit
    FLOOR_REQUEST = "floor.request"  # ask for the floor for one's own point
    FLOOR_CONTROL = "floor.control"  # grant / revoke, mute, remove points, lock the meeting
    ATTENDANCE_SET = "attendance.set"  # mark any invited point present / absent
    ATTENDANCE_SELF = "attendance.self"  # a point reports itself (headcount, roll call)
    ROLL_CALL = "attendance.roll_call"  # start / close a roll call
    VOTE_CONTROL = "vote.control"  # open / close / publish votes
    VOTE_CAST = "vote.cast"
    VOTE_RESULT_EARLY = "vote.result_early"  # see counts before they are published
    MINUTES_EDIT = "minutes.edit"  # conclusions, generate and read minutes drafts
    AUDIT_VIEW = "audit.view"
    METRICS_VIEW = "metrics.view"  # /metrics from outside server.metrics_allow
    # paperless documents (họp không giấy)
    AGENDA_VIEW = "agenda.view"  # a published agenda (staff also see drafts)
    AGENDA_EDIT = "agenda.edit"  # items, order, publication, the current item
    DOCUMENT_UPLOAD = "document.upload"  # upload, replace (new version)
    DOCUMENT_VIEW = "document.view"  # plus each document's own visibility check
    ANNOTATE = "annotate"  # the caller's private layer
    ANNOTATE_SHARED = "annotate.shared"  # the shared layer everyone sees live
    PRESENT = "present"  # drive the presenter view followers see
    FOLLOW = "follow"  # say whether one follows the presenter
    # media (the SFU): publishing camera/microphone, the chair's console, the main screen
    MEDIA_PUBLISH = "media.publish"  # send camera/microphone/screen (observers only receive)
    MEDIA_CONSOLE = "media.console"  # the grid of thumbnails and the quality stats
    MEDIA_MAIN_SCREEN = "media.main_screen"  # put a point on everyone's main screen
    MEDIA_SHARE = "media.share"  # share a screen (staff always; others while their point holds the floor)
    # recording (ghi hình): start/stop; list and download the files (staff only, docs/recording.md)
    RECORDING_CONTROL = "recording.control"
    RECORDING_VIEW = "recording.view"


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
    Action.FLOOR_REQUEST: Rule(EVERYONE - {OBSERVER}, Scope.PARTICIPANT),
    Action.FLOOR_CONTROL: Rule(frozenset({ADMIN, CHAIR}), Scope.CHAIR),
    Action.ATTENDANCE_SET: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.ATTENDANCE_SELF: Rule(frozenset({ADMIN, POINT, DELEGATE, CHAIR, SECRETARY}), Scope.PARTICIPANT),
    Action.ROLL_CALL: Rule(frozenset({ADMIN, CHAIR}), Scope.CHAIR),
    Action.VOTE_CONTROL: Rule(frozenset({ADMIN, CHAIR}), Scope.CHAIR),
    Action.VOTE_CAST: Rule(EVERYONE - {OBSERVER}, Scope.PARTICIPANT),
    Action.VOTE_RESULT_EARLY: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.MINUTES_EDIT: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.AUDIT_VIEW: Rule(frozenset({ADMIN})),
    Action.METRICS_VIEW: Rule(frozenset({ADMIN})),
    Action.AGENDA_VIEW: Rule(EVERYONE, Scope.PARTICIPANT),
    Action.AGENDA_EDIT: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.DOCUMENT_UPLOAD: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.DOCUMENT_VIEW: Rule(EVERYONE, Scope.PARTICIPANT),
    Action.ANNOTATE: Rule(EVERYONE, Scope.PARTICIPANT),
    Action.ANNOTATE_SHARED: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.PRESENT: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.FOLLOW: Rule(EVERYONE, Scope.PARTICIPANT),
    Action.MEDIA_PUBLISH: Rule(EVERYONE - {OBSERVER}, Scope.PARTICIPANT),
    Action.MEDIA_CONSOLE: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
    Action.MEDIA_MAIN_SCREEN: Rule(frozenset({ADMIN, CHAIR}), Scope.CHAIR),
    Action.MEDIA_SHARE: Rule(EVERYONE - {OBSERVER}, Scope.PARTICIPANT),
    Action.RECORDING_CONTROL: Rule(frozenset({ADMIN, CHAIR}), Scope.CHAIR),
    Action.RECORDING_VIEW: Rule(frozenset({ADMIN, CHAIR, SECRETARY}), Scope.STAFF),
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
