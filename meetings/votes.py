"""Votes (biểu quyết): open on an agenda item, cast once, close, publish.

- Choices: agree / disagree / abstain (tán thành / không tán thành / không biểu quyết) or the
  chair's own list.
- Electorate: ``points`` (one ballot per invited bridge point, cast by its device or a user
  attending from it) or ``delegates`` (one per delegate account, plus the meeting's chair).
  Only those present may vote: online in the meeting now, or their point reported present.
- One ballot per voter is enforced by the database (primary key of ``vote_voters``).
- Idempotent: a resubmission with the same ``client_ballot_id`` is answered ``duplicate``; a
  different ballot from the same voter is ``already_voted``.
- Secret votes keep no link between a voter and a choice: the choice only increments an
  aggregate counter (``vote_tallies``) in the transaction that records *that* the voter voted;
  the voter row holds ``sha256(vote_id, voter_key, client_ballot_id)`` for idempotency, which
  says nothing about the choice. Named votes also keep ``vote_named_choices``.
- Results are hidden until the chair publishes them (the chair and secretary see them early).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .attendance import Attendance, Status, invited_points, require_not_closed
from .audit import record
from .bus import Bus
from .calendar import new_id, topic
from .clock import utcnow
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import Principal, Role
from .store.db import Database
from .store.tables import invitations, meetings, users
from .store.tables_conduct import (
    attendance,
    point_controls,
    vote_named_choices,
    vote_tallies,
    vote_voters,
    votes,
)
from .text import clean_line

DEFAULT_CHOICES = (("agree", "Tán thành"), ("disagree", "Không tán thành"), ("abstain", "Không biểu quyết"))
ELECTORATES = ("points", "delegates")
VOTER_ROLES = frozenset({Role.DELEGATE, Role.CHAIR})
_KEY = re.compile(r"^[a-z0-9_-]{1,32}$")
_BALLOT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
ELIGIBLE_TTL_S = 2.0


@dataclass(frozen=True)
class Choice:
    key: str
    label: str


@dataclass(frozen=True)
class Vote:
    id: int
    meeting_id: int
    title: str
    agenda_item_id: int | None
    choices: tuple[Choice, ...]
    secret: bool
    electorate: str
    state: str  # open | closed | published
    opened_at: datetime
    closed_at: datetime | None
    ballots_cast: int
    eligible: int
    you_voted: bool = False


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    counts: dict[str, int]
    percentages: dict[str, float]
    named: list[tuple[str, str]]  # (voter label, choice) for named votes


@dataclass(frozen=True)
class CastResult:
    accepted: bool
    duplicate: bool


def parse_choices(raw: Sequence[Any] | None) -> tuple[Choice, ...]:
    """The default three, or the chair's list: strings or {key?, label}."""
    if not raw:
        return tuple(Choice(k, v) for k, v in DEFAULT_CHOICES)
    if not 2 <= len(raw) <= 20:
        raise Invalid("choices: between 2 and 20", code="invalid_choices", details={"field": "choices"})
    out: list[Choice] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            key, label = (item if _KEY.match(item) else f"c{i + 1}"), item
        elif isinstance(item, dict) and isinstance(item.get("label"), str):
            key, label = str(item.get("key") or f"c{i + 1}"), item["label"]
        else:
            raise Invalid("choices: strings or {key, label} objects", code="invalid_choices",
                          details={"field": "choices"})
        label = clean_line(label)[:200]
        if not _KEY.match(key) or not label:
            raise Invalid(f"choices: bad key or empty label at {i}", code="invalid_choices",
                          details={"field": "choices"})
        out.append(Choice(key, label))
    if len({c.key for c in out}) != len(out):
        raise Invalid("choices: keys must be unique", code="invalid_choices", details={"field": "choices"})
    return tuple(out)


def receipt(vote_id: int, voter_key: str, client_ballot_id: str) -> str:
    return hashlib.sha256(f"{vote_id}\x1f{voter_key}\x1f{client_ballot_id}".encode()).hexdigest()


def percent(n: int, of: int) -> float:
    return round(100.0 * n / of, 2) if of else 0.0


class Votes:
    def __init__(self, db: Database, bus: Bus, attendance: Attendance) -> None:
        self.db = db
        self.bus = bus
        self.attendance = attendance
        self._eligible: dict[int, tuple[float, int]] = {}

    # ------------------------------------------------------------ who may vote

    async def _present_delegates(self, meeting_id: int) -> dict[int, str]:
        """user id → label of the delegates electorate present now."""
        online = await self.attendance.presence.online_usernames(meeting_id)
        present_points = await self.attendance.present_point_ids(meeting_id)
        async with self.db.connect() as conn:
            invited = {p.id for p in await invited_points(conn, meeting_id)}
            chair_id = (await conn.execute(sa.select(meetings.c.chair_id).where(meetings.c.id == meeting_id))).scalar()
            rows = (await conn.execute(sa.select(users).where(
                users.c.disabled.is_(False),
                sa.or_(sa.and_(users.c.role == Role.DELEGATE.value, users.c.point_id.in_(invited or {-1})),
                       users.c.id == (chair_id or -1))))).all()
        return {r.id: r.display_name or r.username for r in rows
                if r.username in online or (r.point_id is not None and r.point_id in present_points)}

    async def _eligible_count(self, meeting_id: int, electorate: str) -> int:
        if electorate == "points":
            return len(await self.attendance.present_point_ids(meeting_id))
        return len(await self._present_delegates(meeting_id))

    async def _voter(self, conn: AsyncConnection, vote: Any, actor: Principal) -> tuple[str, str]:
        """(voter key, label) of a caller in the electorate of ``vote`` (a row); else
        ``not_eligible``."""
        meeting_id = vote.meeting_id
        if vote.electorate == "points":
            if actor.point is None:
                raise Forbidden("this vote is by bridge point; the caller has none", code="not_eligible")
            invited = (await conn.execute(sa.select(invitations.c.point_id).where(
                invitations.c.meeting_id == meeting_id, invitations.c.point_id == actor.point.id))).first()
            removed = (await conn.execute(sa.select(point_controls.c.removed).where(
                point_controls.c.meeting_id == meeting_id, point_controls.c.point_id == actor.point.id))).scalar()
            if invited is None or removed:
                raise Forbidden("this point is not in the electorate", code="not_eligible")
            return f"p:{actor.point.id}", actor.point.name
        user = actor.user
        if user is None or user.role not in VOTER_ROLES:
            raise Forbidden("this vote is by delegate; the caller is not one", code="not_eligible")
        chair_id = (await conn.execute(sa.select(meetings.c.chair_id).where(meetings.c.id == meeting_id))).scalar()
        invited = None
        if user.point_id is not None:
            invited = (await conn.execute(sa.select(invitations.c.point_id).where(
                invitations.c.meeting_id == meeting_id, invitations.c.point_id == user.point_id))).first()
        if not (user.id == chair_id or (user.role is Role.DELEGATE and invited is not None)):
            raise Forbidden("this delegate is not in the electorate", code="not_eligible")
        return f"u:{user.id}", user.display_name or user.username

    async def _require_present(self, conn: AsyncConnection, meeting_id: int, electorate: str,
                               actor: Principal) -> None:
        """Online in the meeting now, or (the voter's point) reported present."""
        presence = self.attendance.presence
        point = actor.point
        if electorate == "delegates":
            assert actor.user is not None
            if await presence.is_user_present(meeting_id, actor.user.username):
                return
        elif point is not None and await presence.is_point_present(meeting_id, point.code):
            return
        if point is not None:
            marked = (await conn.execute(sa.select(attendance.c.status).where(
                attendance.c.meeting_id == meeting_id, attendance.c.point_id == point.id))).scalar()
            removed = (await conn.execute(sa.select(point_controls.c.removed).where(
                point_controls.c.meeting_id == meeting_id, point_controls.c.point_id == point.id))).scalar()
            if marked in (Status.ONLINE.value, Status.IN_HALL.value) and not removed:
                return
        who = "points" if electorate == "points" else "delegates"
        raise Forbidden(f"only {who} present in the meeting may vote", code="not_present")

    async def eligible_now(self, vote_id: int, meeting_id: int, electorate: str) -> int:
        """The live electorate count, recomputed at most every ``ELIGIBLE_TTL_S`` per vote
        (a count for the chair's screen, not a decision)."""
        now = time.monotonic()
        cached = self._eligible.get(vote_id)
        if cached is not None and now - cached[0] < ELIGIBLE_TTL_S:
            return cached[1]
        value = await self._eligible_count(meeting_id, electorate)
        self._eligible[vote_id] = (now, value)
        return value

    # ------------------------------------------------------------ reading

    async def _vote(self, conn: AsyncConnection, row: Any, *, voter_key: str | None = None) -> Vote:
        cast = (await conn.execute(sa.select(sa.func.count()).select_from(vote_voters)
                                   .where(vote_voters.c.vote_id == row.id))).scalar() or 0
        you = False
        if voter_key is not None:
            you = (await conn.execute(sa.select(vote_voters.c.vote_id).where(
                vote_voters.c.vote_id == row.id, vote_voters.c.voter_key == voter_key))).first() is not None
        eligible = row.eligible
        if eligible is None:
            eligible = await self.eligible_now(row.id, row.meeting_id, row.electorate)
        return Vote(row.id, row.meeting_id, row.title, row.agenda_item_id,
                    tuple(Choice(c["key"], c["label"]) for c in row.choices), bool(row.secret), row.electorate,
                    row.state, row.opened_at, row.closed_at, int(cast), int(eligible), you)

    @staticmethod
    def voter_keys(actor: Principal) -> tuple[str | None, str | None]:
        """The keys the caller would vote under: (as a point, as a delegate)."""
        return (f"p:{actor.point.id}" if actor.point else None, f"u:{actor.user.id}" if actor.user else None)

    async def get(self, vote_id: int, actor: Principal | None = None) -> Vote:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(votes).where(votes.c.id == vote_id))).first()
            if row is None:
                raise NotFound(f"no vote {vote_id}", code="vote_not_found")
            return await self._vote(conn, row, voter_key=self._key_for(row, actor))

    def _key_for(self, row: Any, actor: Principal | None) -> str | None:
        if actor is None:
            return None
        point_key, user_key = self.voter_keys(actor)
        return point_key if row.electorate == "points" else user_key

    async def meeting_of(self, vote_id: int) -> int:
        async with self.db.connect() as conn:
            meeting_id = (await conn.execute(sa.select(votes.c.meeting_id).where(votes.c.id == vote_id))).scalar()
        if meeting_id is None:
            raise NotFound(f"no vote {vote_id}", code="vote_not_found")
        return int(meeting_id)

    async def list(self, meeting_id: int, actor: Principal | None = None) -> list[Vote]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(votes).where(votes.c.meeting_id == meeting_id)
                                       .order_by(votes.c.id))).all()
            return [await self._vote(conn, r, voter_key=self._key_for(r, actor)) for r in rows]

    async def result(self, vote_id: int, *, early: bool) -> VoteResult:
        vote = await self.get(vote_id)
        if vote.state != "published" and not early:
            raise Forbidden("the result is not published yet", code="result_hidden")
        async with self.db.connect() as conn:
            tallies = {str(choice): int(n) for choice, n in (await conn.execute(
                sa.select(vote_tallies.c.choice, vote_tallies.c.count)
                .where(vote_tallies.c.vote_id == vote_id))).tuples().all()}
            named: list[tuple[str, str]] = []
            if not vote.secret:
                named = [(r.voter_label, r.choice) for r in (await conn.execute(
                    sa.select(vote_voters.c.voter_label, vote_named_choices.c.choice)
                    .join(vote_named_choices, sa.and_(vote_named_choices.c.vote_id == vote_voters.c.vote_id,
                                                      vote_named_choices.c.voter_key == vote_voters.c.voter_key))
                    .where(vote_voters.c.vote_id == vote_id).order_by(vote_voters.c.voter_label))).all()]
        counts = {c.key: tallies.get(c.key, 0) for c in vote.choices}
        base = vote.eligible or vote.ballots_cast
        return VoteResult(vote, counts, {k: percent(n, base) for k, n in counts.items()}, named)

    # ------------------------------------------------------------ the chair

    async def open(self, meeting_id: int, actor: Principal, *, title: str, agenda_item_id: int | None,
                   choices: Sequence[Any] | None, secret: bool, electorate: str) -> Vote:
        text = clean_line(title)
        if not text or len(text) > 500:
            raise Invalid("title: 1 to 500 characters", code="invalid_title", details={"field": "title"})
        if electorate not in ELECTORATES:
            raise Invalid("electorate: points or delegates", code="invalid_field", details={"field": "electorate"})
        parsed = parse_choices(choices)
        async with self.db.transaction() as conn:
            await require_not_closed(conn, meeting_id)
            if agenda_item_id is not None:
                await self._check_agenda_item(conn, meeting_id, agenda_item_id)
            vote_id = new_id(await conn.execute(votes.insert().values(
                meeting_id=meeting_id, agenda_item_id=agenda_item_id, title=text,
                choices=[{"key": c.key, "label": c.label} for c in parsed], secret=secret,
                electorate=electorate, state="open", opened_at=utcnow())))
            for c in parsed:
                await conn.execute(vote_tallies.insert().values(vote_id=vote_id, choice=c.key, count=0))
            await record(conn, actor, "vote.open", meeting_id=meeting_id, target=str(vote_id),
                         details={"title": text, "secret": secret, "electorate": electorate})
        await self.bus.publish(topic(meeting_id), {"type": "vote.opened", "vote_id": vote_id})
        return await self.get(vote_id)

    async def _check_agenda_item(self, conn: AsyncConnection, meeting_id: int, item_id: int) -> None:
        try:
            from .store.tables_documents import agenda_items
        except ImportError:  # the documents feature is not installed: keep the plain id
            return
        found = (await conn.execute(sa.select(agenda_items.c.meeting_id)
                                    .where(agenda_items.c.id == item_id))).scalar()
        if found != meeting_id:
            raise Invalid(f"agenda item {item_id} is not in this meeting", code="invalid_agenda_item",
                          details={"field": "agenda_item_id"})

    async def close(self, vote_id: int, actor: Principal) -> Vote:
        vote = await self.get(vote_id)
        if vote.state != "open":
            raise Conflict("the vote is not open", code="vote_closed")
        eligible = max(await self._eligible_count(vote.meeting_id, vote.electorate), vote.ballots_cast)
        async with self.db.transaction() as conn:
            done = await conn.execute(votes.update().where(votes.c.id == vote_id, votes.c.state == "open")
                                      .values(state="closed", closed_at=utcnow(), eligible=eligible))
            if not done.rowcount:
                raise Conflict("the vote is not open", code="vote_closed")
            await record(conn, actor, "vote.close", meeting_id=vote.meeting_id, target=str(vote_id),
                         details={"ballots_cast": vote.ballots_cast, "eligible": eligible})
        await self.bus.publish(topic(vote.meeting_id), {"type": "vote.closed", "vote_id": vote_id})
        return await self.get(vote_id)

    async def publish(self, vote_id: int, actor: Principal) -> Vote:
        vote = await self.get(vote_id)
        if vote.state == "open":
            raise Conflict("close the vote before publishing its result", code="vote_open")
        if vote.state == "closed":
            async with self.db.transaction() as conn:
                await conn.execute(votes.update().where(votes.c.id == vote_id, votes.c.state == "closed")
                                   .values(state="published", published_at=utcnow()))
                await record(conn, actor, "vote.publish", meeting_id=vote.meeting_id, target=str(vote_id))
            await self.bus.publish(topic(vote.meeting_id), {"type": "vote.published", "vote_id": vote_id})
        return await self.get(vote_id)

    # ------------------------------------------------------------ voters

    async def cast(self, vote_id: int, actor: Principal, *, choice: str, client_ballot_id: str) -> CastResult:
        if not isinstance(client_ballot_id, str) or not _BALLOT_ID.match(client_ballot_id):
            raise Invalid("client_ballot_id: 8 to 128 characters of A-Z a-z 0-9 . _ : -",
                          code="invalid_field", details={"field": "client_ballot_id"})
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(votes).where(votes.c.id == vote_id))).first()
            if row is None:
                raise NotFound(f"no vote {vote_id}", code="vote_not_found")
            keys = [c["key"] for c in row.choices]
            if choice not in keys:
                raise Invalid(f"choice: one of {', '.join(keys)}", code="invalid_choice", details={"field": "choice"})
            key, label = await self._voter(conn, row, actor)
        mine = receipt(vote_id, key, client_ballot_id)
        async with self.db.transaction() as conn:
            state = (await conn.execute(sa.select(votes.c.state).where(votes.c.id == vote_id))).scalar()
            prior = (await conn.execute(sa.select(vote_voters.c.receipt).where(
                vote_voters.c.vote_id == vote_id, vote_voters.c.voter_key == key))).scalar()
            if prior is not None:  # answered even after close: a reconnecting client resends
                if prior == mine:
                    return CastResult(True, True)
                raise Conflict("this voter has already voted", code="already_voted")
            if state != "open":
                raise Conflict("the vote is closed", code="vote_closed")
            await self._require_present(conn, row.meeting_id, row.electorate, actor)
            try:
                async with conn.begin_nested():
                    await conn.execute(vote_voters.insert().values(
                        vote_id=vote_id, voter_key=key, voter_label=label[:255], receipt=mine))
            except IntegrityError:  # a concurrent twin won (PostgreSQL): same answer as above
                prior = (await conn.execute(sa.select(vote_voters.c.receipt).where(
                    vote_voters.c.vote_id == vote_id, vote_voters.c.voter_key == key))).scalar()
                if prior == mine:
                    return CastResult(True, True)
                raise Conflict("this voter has already voted", code="already_voted") from None
            await conn.execute(vote_tallies.update().where(
                vote_tallies.c.vote_id == vote_id, vote_tallies.c.choice == choice)
                .values(count=vote_tallies.c.count + 1))
            if not row.secret:
                await conn.execute(vote_named_choices.insert().values(
                    vote_id=vote_id, voter_key=key, choice=choice, cast_at=utcnow()))
            cast = int((await conn.execute(sa.select(sa.func.count()).select_from(vote_voters)
                                           .where(vote_voters.c.vote_id == vote_id))).scalar() or 0)
        eligible = await self.eligible_now(vote_id, row.meeting_id, row.electorate)
        await self.bus.publish(topic(row.meeting_id), {
            "type": "vote.count", "vote_id": vote_id, "ballots_cast": cast, "eligible": max(eligible, cast)})
        return CastResult(True, False)
