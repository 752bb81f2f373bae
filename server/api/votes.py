"""Votes (biểu quyết): open, cast (idempotent), close, publish, result. Domain in ``meetings/votes.py``.

Events carry ids and counts only, never choices: ``vote.opened``, ``vote.count``,
``vote.closed``, ``vote.published``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.clock import isoformat
from meetings.errors import Invalid
from meetings.permissions import Action, allowed
from meetings.votes import Vote, VoteResult

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import field_bool, field_str, path_int
from .floor import optional_body
from .schemas import ref

TAGS = ["votes"]


def vote_json(v: Vote) -> dict[str, Any]:
    return {
        "id": v.id, "meeting_id": v.meeting_id, "title": v.title, "agenda_item_id": v.agenda_item_id,
        "choices": [{"key": c.key, "label": c.label} for c in v.choices], "secret": v.secret,
        "electorate": v.electorate, "state": v.state, "opened_at": isoformat(v.opened_at),
        "closed_at": isoformat(v.closed_at), "ballots_cast": v.ballots_cast, "eligible": v.eligible,
        "you_voted": v.you_voted,
    }


def result_json(r: VoteResult) -> dict[str, Any]:
    return {
        "vote_id": r.vote.id, "state": r.vote.state, "eligible": r.vote.eligible, "cast": r.vote.ballots_cast,
        "counts": r.counts, "percentages": r.percentages,
        "named": [{"voter_label": label, "choice": choice} for label, choice in r.named],
    }


def _agenda_item(body: dict[str, Any]) -> int | None:
    value = body.get("agenda_item_id")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise Invalid("agenda_item_id: a positive integer", code="invalid_field", details={"field": "agenda_item_id"})
    return value


@operation("openVote", "Open a vote (chair): agree / disagree / abstain or custom choices, named or secret",
           tags=TAGS, status=201, request=ref("VoteCreate"), response=ref("Vote"), errors=(400, 401, 403, 404))
async def open_vote(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.VOTE_CONTROL, meeting_id)
    body = await optional_body(request, {"title", "agenda_item_id", "choices", "secret", "electorate"})
    choices = body.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise Invalid("choices: a list", code="invalid_choices", details={"field": "choices"})
    vote = await request.app[SERVICES].votes.open(
        meeting_id, principal, title=field_str(body, "title", max_len=2000), agenda_item_id=_agenda_item(body),
        choices=choices, secret=field_bool(body, "secret", default=False),
        electorate=field_str(body, "electorate", required=False, default="points", max_len=16))
    return web.json_response(vote_json(vote), status=201)


@operation("listVotes", "The meeting's votes, with live ballot counts (never choices before publication)",
           tags=TAGS, response=ref("VoteList"))
async def list_votes(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.MEETING_VIEW, meeting_id)
    found = await request.app[SERVICES].votes.list(meeting_id, principal)
    return web.json_response({"votes": [vote_json(v) for v in found]})


@operation("castBallot", "Cast the caller's ballot (idempotent on client_ballot_id)", tags=TAGS, status=201,
           request=ref("BallotCast"), response=ref("BallotAccepted"), errors=(400, 401, 403, 404, 409),
           description="Only eligible voters present in the meeting. The same client_ballot_id again "
           "answers duplicate=true; a different ballot from the same voter is 409 already_voted.")
async def cast_ballot(request: web.Request) -> web.Response:
    vote_id = path_int(request, "vote_id")
    votes = request.app[SERVICES].votes
    meeting_id = await votes.meeting_of(vote_id)
    principal, _ = await authorize(request, Action.VOTE_CAST, meeting_id)
    body = await optional_body(request, {"choice", "client_ballot_id"})
    done = await votes.cast(vote_id, principal, choice=field_str(body, "choice", max_len=64),
                            client_ballot_id=field_str(body, "client_ballot_id", max_len=200))
    return web.json_response({"accepted": done.accepted, "duplicate": done.duplicate}, status=201)


@operation("closeVote", "Close a vote (chair): no more ballots; the electorate count is frozen", tags=TAGS,
           response=ref("Vote"), errors=(400, 401, 403, 404, 409))
async def close_vote(request: web.Request) -> web.Response:
    vote_id = path_int(request, "vote_id")
    votes = request.app[SERVICES].votes
    principal, _ = await authorize(request, Action.VOTE_CONTROL, await votes.meeting_of(vote_id))
    return web.json_response(vote_json(await votes.close(vote_id, principal)))


@operation("publishVoteResult", "Publish a closed vote's result to every participant (chair)", tags=TAGS,
           response=ref("Vote"), errors=(400, 401, 403, 404, 409))
async def publish_vote(request: web.Request) -> web.Response:
    vote_id = path_int(request, "vote_id")
    votes = request.app[SERVICES].votes
    principal, _ = await authorize(request, Action.VOTE_CONTROL, await votes.meeting_of(vote_id))
    return web.json_response(vote_json(await votes.publish(vote_id, principal)))


@operation("getVoteResult", "Counts and percentages (and names, for named votes)", tags=TAGS,
           response=ref("VoteResult"), errors=(400, 401, 403, 404),
           description="Before publication only the chair and the secretary (and admins) see it; "
           "others get 403 result_hidden.")
async def get_result(request: web.Request) -> web.Response:
    vote_id = path_int(request, "vote_id")
    votes = request.app[SERVICES].votes
    principal, scope = await authorize(request, Action.MEETING_VIEW, await votes.meeting_of(vote_id))
    early = allowed(principal, Action.VOTE_RESULT_EARLY, scope)
    return web.json_response(result_json(await votes.result(vote_id, early=early)))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/meetings/{meeting_id}/votes", open_vote)
    app.router.add_get("/api/meetings/{meeting_id}/votes", list_votes)
    app.router.add_post("/api/votes/{vote_id}/ballots", cast_ballot)
    app.router.add_post("/api/votes/{vote_id}/close", close_vote)
    app.router.add_post("/api/votes/{vote_id}/publish", publish_vote)
    app.router.add_get("/api/votes/{vote_id}/result", get_result)
