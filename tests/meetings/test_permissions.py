"""The permission table as pure functions: ``allowed`` and ``require`` over every subject."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meetings.errors import Forbidden, Unauthenticated
from meetings.models import (
    BridgePoint,
    Meeting,
    MeetingState,
    PointLevel,
    Principal,
    Role,
    User,
)
from meetings.permissions import (
    PERMISSIONS,
    Action,
    MeetingScope,
    Scope,
    allowed,
    require,
    subject_of,
)

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def user(uid: int, role: Role, point: BridgePoint | None = None) -> Principal:
    u = User(uid, f"u{uid}", f"User {uid}", role, False, NOW, point.id if point else None)
    return Principal("user", user=u, point=point, session_id=uid)


def point(pid: int) -> BridgePoint:
    return BridgePoint(pid, f"P{pid}", f"Điểm cầu {pid}", PointLevel.COMMUNE, None, True, NOW)


def meeting(mid: int, chair: int | None, secretary: int | None) -> Meeting:
    return Meeting(mid, f"Họp {mid}", "", NOW, None, MeetingState.SCHEDULED, None, chair, secretary, None,
                   NOW, None, None)


INVITED, OTHER = point(1), point(2)
A = MeetingScope(meeting(10, chair=2, secretary=3), frozenset({INVITED.id}))
B = MeetingScope(meeting(11, chair=9, secretary=None), frozenset({OTHER.id}))

SUBJECTS: dict[str, Principal | None] = {
    "admin": user(1, Role.ADMIN),
    "chair_of_a": user(2, Role.CHAIR),
    "secretary_of_a": user(3, Role.SECRETARY),
    "chair_elsewhere": user(4, Role.CHAIR),
    "delegate_invited": user(5, Role.DELEGATE, INVITED),
    "delegate_not_invited": user(6, Role.DELEGATE, OTHER),
    "observer_invited": user(7, Role.OBSERVER, INVITED),
    "device_invited": Principal("point", point=INVITED),
    "device_not_invited": Principal("point", point=OTHER),
    "link_of_a": Principal("point", point=INVITED, meeting_id=A.meeting.id),
    "anonymous": None,
}

# subject → actions allowed on meeting A (the table, written out once more by hand).
# What each kind of caller may do on meeting A: the permission table, written out as a table.
A_ = Action
PARTICIPATE = {A_.MEETING_LIST, A_.MEETING_VIEW, A_.MEETING_JOIN, A_.AGENDA_VIEW, A_.DOCUMENT_VIEW,
               A_.ANNOTATE, A_.FOLLOW}
SPEAK_AND_VOTE = {A_.CHAT_SEND, A_.FLOOR_REQUEST, A_.ATTENDANCE_SELF, A_.VOTE_CAST, A_.MEDIA_PUBLISH}
SPEAK_AND_VOTE |= {A_.MEDIA_SHARE}  # the domain also wants the floor (or staff): meetings/share.py
STAFF = {A_.POINTS_VIEW, A_.MEETING_CREATE, A_.MEETING_EDIT, A_.MEETING_INVITE, A_.ATTENDANCE_SET,
         A_.VOTE_RESULT_EARLY, A_.MINUTES_EDIT, A_.AGENDA_EDIT, A_.DOCUMENT_UPLOAD, A_.ANNOTATE_SHARED,
         A_.PRESENT, A_.MEDIA_CONSOLE, A_.ACCOUNT_SELF, A_.RECORDING_VIEW}
CHAIR_ONLY = {A_.MEETING_CONTROL, A_.FLOOR_CONTROL, A_.ROLL_CALL, A_.VOTE_CONTROL, A_.MEDIA_MAIN_SCREEN,
              A_.RECORDING_CONTROL}
EXPECTED_ON_A: dict[str, set[Action]] = {
    "admin": set(Action),
    "chair_of_a": PARTICIPATE | SPEAK_AND_VOTE | STAFF | CHAIR_ONLY,
    "secretary_of_a": PARTICIPATE | SPEAK_AND_VOTE | STAFF,
    "chair_elsewhere": {A_.POINTS_VIEW, A_.MEETING_CREATE, A_.MEETING_LIST, A_.ACCOUNT_SELF},
    "delegate_invited": PARTICIPATE | SPEAK_AND_VOTE | {A_.ACCOUNT_SELF},
    "delegate_not_invited": {A_.MEETING_LIST, A_.ACCOUNT_SELF},
    "observer_invited": PARTICIPATE | {A_.ACCOUNT_SELF},
    "device_invited": PARTICIPATE | SPEAK_AND_VOTE,
    "device_not_invited": {A_.MEETING_LIST},
    "link_of_a": PARTICIPATE | SPEAK_AND_VOTE,
    "anonymous": set(),
}


def test_every_action_has_a_rule() -> None:
    assert set(PERMISSIONS) == set(Action)


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_table_on_meeting_a(name: str) -> None:
    principal = SUBJECTS[name]
    got = {a for a in Action if allowed(principal, a, A)}
    assert got == EXPECTED_ON_A[name]


def test_scope_needs_a_meeting() -> None:
    # meeting-scoped rules refuse everyone but admins when no meeting is given
    for name, principal in SUBJECTS.items():
        if name == "admin":
            continue
        for action, rule in PERMISSIONS.items():
            if rule.scope is not Scope.ANY:
                assert not allowed(principal, action, None), (name, action)


def test_meeting_scope_does_not_leak() -> None:
    chair_a = SUBJECTS["chair_of_a"]
    assert allowed(chair_a, Action.MEETING_CONTROL, A)
    assert not allowed(chair_a, Action.MEETING_CONTROL, B)
    assert not allowed(chair_a, Action.MEETING_VIEW, B)
    link_a = SUBJECTS["link_of_a"]
    # a link is limited to its meeting even if its point is invited elsewhere too
    b_with_point = MeetingScope(B.meeting, frozenset({INVITED.id}))
    assert allowed(SUBJECTS["device_invited"], Action.MEETING_VIEW, b_with_point)
    assert not allowed(link_a, Action.MEETING_VIEW, b_with_point)


def test_subject_of() -> None:
    assert subject_of(None) is None
    assert subject_of(SUBJECTS["device_invited"]) == "point"
    assert subject_of(SUBJECTS["secretary_of_a"]) == "secretary"
    assert subject_of(Principal("user")) is None


def test_require_raises_the_right_error() -> None:
    with pytest.raises(Unauthenticated):
        require(None, Action.MEETING_LIST)
    with pytest.raises(Forbidden) as info:
        require(SUBJECTS["delegate_invited"], Action.USERS_MANAGE)
    assert info.value.details == {"action": "users.manage"}
    require(SUBJECTS["admin"], Action.USERS_MANAGE)
