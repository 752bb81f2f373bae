"""Secret ballots cannot be linked to voters: the database is read directly (sqlite3, not
the service) after a secret vote with known voters and known choices."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from meetings.attendance import Status
from meetings.calendar import InviteSelection, MeetingDraft
from meetings.errors import Conflict
from meetings.models import Principal
from meetings.votes import receipt
from server.services import Services

CHOICES = ("agree", "disagree", "abstain")


async def _world(services: Services) -> tuple[int, dict[str, Principal], Principal]:
    reg = services.registry
    await reg.create("P", "Tỉnh Thái Nguyên", "province")
    points = {}
    for code, name in (("A", "Huyện Đại Từ"), ("B", "Huyện Định Hóa"), ("C", "Huyện Phú Lương"),
                       ("D", "Huyện Võ Nhai")):
        points[code] = Principal("point", point=await reg.create(code, name, "district", "P"))
    chair_user = await services.accounts.create_user("chutri", "mat-khau-thu-nghiem", "chair")
    chair = Principal("user", user=chair_user)
    meeting = await services.calendar.create(MeetingDraft(
        "Kỳ họp bất thường", datetime.now(UTC) + timedelta(hours=1), host_point_code="P",
        chair_username="chutri"), created_by=None)
    await services.calendar.invite(meeting.id, InviteSelection(codes=tuple(points)))
    for code in points:
        await services.attendance.set(meeting.id, chair, code, Status.IN_HALL, headcount=4)
    return meeting.id, points, chair


async def test_secret_ballots_are_unlinkable_in_the_database(services: Services) -> None:
    meeting_id, points, chair = await _world(services)
    votes = services.votes
    secret = await votes.open(meeting_id, chair, title="Bỏ phiếu kín nhân sự", agenda_item_id=None, choices=None,
                              secret=True, electorate="points")
    named = await votes.open(meeting_id, chair, title="Biểu quyết công khai", agenda_item_id=None, choices=None,
                             secret=False, electorate="points")
    plan = {"A": "agree", "B": "disagree", "C": "agree", "D": "abstain"}
    cbids = {code: f"ballot-{code}-0001" for code in plan}
    for code, choice in plan.items():
        assert not (await votes.cast(secret.id, points[code], choice=choice, client_ballot_id=cbids[code])).duplicate
        await votes.cast(named.id, points[code], choice=choice, client_ballot_id=cbids[code] + "n")
    # a reconnecting client resends: recognised, not counted; another ballot: refused
    assert (await votes.cast(secret.id, points["A"], choice="disagree", client_ballot_id=cbids["A"])).duplicate
    try:
        await votes.cast(secret.id, points["A"], choice="disagree", client_ballot_id="another-ballot-id")
        raise AssertionError("a second ballot was accepted")
    except Conflict as exc:
        assert exc.code == "already_voted"
    await votes.close(secret.id, chair)

    voters = {code: (f"p:{p.point.id}", p.point.name) for code, p in points.items() if p.point}
    path = sa.make_url(services.config.database_url).database
    assert path
    raw = sqlite3.connect(path)
    try:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        # 1. who voted is known ...
        rows = raw.execute("SELECT voter_key, voter_label, receipt FROM vote_voters WHERE vote_id=?",
                           (secret.id,)).fetchall()
        assert sorted(r[0] for r in rows) == sorted(k for k, _ in voters.values())
        # ... and the idempotency receipt is a function of (vote, voter, client ballot id) only
        for key, _label, stored in rows:
            code = next(c for c, (k, _) in voters.items() if k == key)
            assert stored == receipt(secret.id, key, cbids[code])
        # 2. no table has a row holding both a voter of the secret vote and a choice
        for table in tables:
            columns = [r[1] for r in raw.execute(f"PRAGMA table_info({table})")]
            for row in raw.execute(f"SELECT * FROM {table}"):
                cells = {str(c) for c in row if c is not None}
                if table == "vote_named_choices" and row[columns.index("vote_id")] == named.id:
                    continue  # the named vote may link, by definition
                has_choice = bool(cells & set(CHOICES))
                has_voter = any(k in cells or label in cells for k, label in voters.values())
                assert not (has_choice and has_voter), f"{table} links a voter and a choice: {row}"
        # 3. choices exist only as counters: one row per choice, no time, no per-ballot rows
        tallies = dict(raw.execute("SELECT choice, count FROM vote_tallies WHERE vote_id=?", (secret.id,)).fetchall())
        assert tallies == {"agree": 2, "disagree": 1, "abstain": 1}
        for table in ("vote_voters", "vote_tallies"):
            types = {r[1]: r[2].upper() for r in raw.execute(f"PRAGMA table_info({table})")}
            assert not any("DATE" in t or "TIME" in t for t in types.values()), (table, types)
            assert "choice" not in types or table == "vote_tallies"
        assert raw.execute("SELECT count(*) FROM vote_named_choices WHERE vote_id=?", (secret.id,)).fetchone()[0] == 0
        # 4. the audit log knows the vote was opened and closed, never a ballot
        actions = [r[0] for r in raw.execute("SELECT action FROM audit_log WHERE target=?", (str(secret.id),))]
        assert "vote.open" in actions and "vote.close" in actions
        assert not any("ballot" in a or "cast" in a for a in actions)
        assert not raw.execute("SELECT count(*) FROM audit_log WHERE details LIKE '%agree%' "
                               "OR details LIKE '%abstain%'").fetchone()[0]
    finally:
        raw.close()
    # the named vote does keep names, as it should
    result = await votes.result(named.id, early=True)
    names = {c: p.point.name for c, p in points.items() if p.point}
    assert sorted(result.named) == sorted((names[c], ch) for c, ch in plan.items())
