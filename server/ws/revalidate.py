"""Session revalidation: a session lives only as long as what let it in.

A WebSocket session is admitted once (``hello``) but may live for hours. Three things end it
early, on every node:

- **its credential stops being valid** — the login session was logged out, expired or revoked
  by a password change or a new role or bridge point for the account, the account or the
  bridge point was disabled, the device token was
  revoked, the invitation link was replaced or expired. The hub asks the store about *all* its
  sessions in one statement every ``signalling.revalidate_s`` (:func:`meetings.accounts.
  credential_status`), and about one session on every resume;
- **its point was removed from the meeting** by the chair (``point.removed`` on the meeting's
  bus topic, which every node's room receives);
- **it may no longer join its meeting**: its point was uninvited (``invitations.changed``
  without ``invited``, on every node; and on resume, with the removal above).

Such a session gets ``session.ended {reason, code}``, its socket is closed with
:data:`CLOSE_SESSION_ENDED`, and it leaves its meeting like any other (leave hooks, presence
``left`` with the same reason). A later resume of it is refused with ``session_ended``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meetings.accounts import CREDENTIAL_KINDS, credential_status
from meetings.credentials import hash_token
from meetings.errors import Conflict, Forbidden, NotFound
from meetings.permissions import Action, MeetingScope, allowed

if TYPE_CHECKING:
    from ..services import Services
    from .session import Session

log = logging.getLogger(__name__)

CREDENTIALS_TOPIC = "credentials"
"""Bus topic of ``credentials.withdrawn`` (logout, password change, account or point disabled,
device tokens revoked, invitation link replaced): every node runs a revalidation round at once
instead of waiting up to ``signalling.revalidate_s``."""


async def withdrawn(services: Services, what: str) -> None:
    """Tell every node that some credential stopped being valid (the REST command that did it
    must not fail if the bus does not answer: the periodic round still catches it)."""
    try:
        await services.bus.publish(CREDENTIALS_TOPIC, {"type": "credentials.withdrawn",
                                                       "what": what})
    except Exception:
        log.exception("signalling: publishing credentials.withdrawn (%s) failed", what)


CLOSE_SESSION_ENDED = 4003
"""Close code after ``session.ended`` (docs/protocol.md): do not resume, log in or join again."""

EXPIRED, REVOKED, DISABLED, REMOVED = "expired", "revoked", "disabled", "removed"
REASONS = (EXPIRED, REVOKED, DISABLED, REMOVED)


@dataclass(frozen=True)
class Credential:
    """What admitted a session: the token's kind (``dcs``/``dcp``/``dci``) and its hash."""

    kind: str
    token_hash: str

    @classmethod
    def of(cls, token: str) -> Credential | None:
        kind = token[:3]
        if token[3:4] != "_" or kind not in CREDENTIAL_KINDS:
            return None
        return cls(kind, hash_token(token))


@dataclass(frozen=True)
class Verdict:
    """Why a session must end: ``reason`` (one of :data:`REASONS`) and an error code whose
    translated text the client shows."""

    reason: str
    code: str


NOT_INVITED = Verdict(REMOVED, "not_invited")
"""The meeting no longer admits this session (its point was uninvited)."""
POINT_REMOVED = Verdict(REMOVED, "point_removed")
"""The chair removed the session's point from the meeting."""


def verdict_for(kind: str, reason: str) -> Verdict:
    """The client-facing code for a credential ``reason`` of a token ``kind``."""
    if reason == DISABLED:
        return Verdict(reason, "account_disabled" if kind == "dcs" else "point_disabled")
    if reason == EXPIRED:
        return Verdict(reason, "token_expired")
    return Verdict(REVOKED, "invalid_token")


async def check_credentials(services: Services, sessions: list[Session]) -> dict[Session, Verdict]:
    """The sessions among ``sessions`` whose credential is no longer valid (one query)."""
    hashes: dict[str, set[str]] = {}
    for session in sessions:
        if session.credential is not None:
            hashes.setdefault(session.credential.kind, set()).add(session.credential.token_hash)
    if not hashes:
        return {}
    status = await credential_status(services.db, hashes)
    ended: dict[Session, Verdict] = {}
    for session in sessions:
        credential = session.credential
        if credential is not None and credential.token_hash in status:
            ended[session] = verdict_for(credential.kind, status[credential.token_hash])
    return ended


async def check_meeting(services: Services, session: Session) -> Verdict | None:
    """May ``session`` still be in its meeting? (invited, not removed by the chair)."""
    meeting_id = session.meeting_id
    if meeting_id is None:
        return None
    try:
        scope = await services.calendar.scope(meeting_id)
    except NotFound:
        return None  # the meeting is gone: the room handles that
    if not allowed(session.principal, Action.MEETING_JOIN, scope):
        return NOT_INVITED
    try:
        await services.floor.admit(meeting_id, session.principal, scope)
    except Forbidden as exc:
        return POINT_REMOVED if exc.code == "point_removed" else NOT_INVITED
    except Conflict as exc:  # a locked meeting admits this session: it was in it before
        if exc.code != "meeting_locked":
            raise
    return None


async def check_resume(services: Services, session: Session) -> Verdict | None:
    """Re-authenticate a session that asks to resume: its credential, then its meeting."""
    ended = await check_credentials(services, [session])
    if session in ended:
        return ended[session]
    return await check_meeting(services, session)


def uninvited_sessions(sessions: list[Session], scope: MeetingScope) -> list[Session]:
    """The sessions the meeting no longer admits (after an uninvitation): no query."""
    return [s for s in sessions if not allowed(s.principal, Action.MEETING_JOIN, scope)]


def removed_sessions(sessions: list[Session], point_code: str) -> list[Session]:
    """The sessions admitted as, or attending from, the removed point ``point_code``."""
    return [s for s in sessions
            if s.principal.point is not None and s.principal.point.code == point_code]
