"""Votes over real HTTP: open, cast (idempotent), the refusals, hidden results, publish,
named results, and 200 concurrent ballots (none lost, none doubled)."""

from __future__ import annotations

import asyncio
import time
import uuid

from meetings.attendance import Status
from meetings.calendar import InviteSelection
from meetings.models import Principal
from tests.conftest import Api
from tests.server.test_floor_api_kit import build_hall


def ballot(choice: str, cbid: str | None = None) -> dict[str, str]:
    return {"choice": choice, "client_ballot_id": cbid or uuid.uuid4().hex}


async def test_named_vote_by_points(api: Api) -> None:
    h = await build_hall(api)
    await h.mark_present("D01", "D02")
    vote = await h.call("POST", h.m("/votes"), h.chair, {"title": "Thông qua chương trình hội nghị"}, status=201)
    assert [c["label"] for c in vote["choices"]] == ["Tán thành", "Không tán thành", "Không biểu quyết"]
    assert vote["state"] == "open" and vote["eligible"] == 2 and vote["ballots_cast"] == 0 and not vote["secret"]
    vid = vote["id"]
    cbid = uuid.uuid4().hex
    first = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("agree", cbid), status=201)
    assert first == {"accepted": True, "duplicate": False}
    again = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("agree", cbid), status=201)
    assert again == {"accepted": True, "duplicate": True}
    # the delegate at D01 votes for the same point: already voted
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.delegate, ballot("disagree"), status=409)
    assert body["error"]["code"] == "already_voted"
    await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D02"], ballot("disagree"), status=201)
    listed = await h.call("GET", h.m("/votes"), h.devices["D01"], status=200)
    assert listed["votes"][0]["you_voted"] is True and listed["votes"][0]["ballots_cast"] == 2
    assert (await h.call("GET", h.m("/votes"), h.devices["D03"], status=200))["votes"][0]["you_voted"] is False
    # hidden until published
    for who in (h.delegate, h.devices["D01"], h.observer):
        body = await h.call("GET", f"/api/votes/{vid}/result", who, status=403)
        assert body["error"]["code"] == "result_hidden"
    early = await h.call("GET", f"/api/votes/{vid}/result", h.secretary, status=200)
    assert early["counts"] == {"agree": 1, "disagree": 1, "abstain": 0}
    await h.call("POST", f"/api/votes/{vid}/publish", h.chair, status=409)  # still open
    closed = await h.call("POST", f"/api/votes/{vid}/close", h.chair, status=200)
    assert closed["state"] == "closed" and closed["eligible"] == 2
    await h.call("POST", f"/api/votes/{vid}/close", h.chair, status=409)
    # after close: a new ballot is refused, a reconnecting duplicate still recognised
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D03"], ballot("agree"), status=409)
    assert body["error"]["code"] in ("vote_closed", "not_present")
    await h.mark_present("D03")
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D03"], ballot("agree"), status=409)
    assert body["error"]["code"] == "vote_closed"
    assert (await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("agree", cbid),
                         status=201))["duplicate"] is True
    await h.call("POST", f"/api/votes/{vid}/publish", h.secretary, status=403)
    assert (await h.call("POST", f"/api/votes/{vid}/publish", h.chair, status=200))["state"] == "published"
    result = await h.call("GET", f"/api/votes/{vid}/result", h.observer, status=200)
    assert result["cast"] == 2 and result["eligible"] == 2
    assert result["percentages"] == {"agree": 50.0, "disagree": 50.0, "abstain": 0.0}
    assert sorted((n["voter_label"], n["choice"]) for n in result["named"]) == [
        ("Huyện Lâm Bình", "agree"), ("Huyện Na Hang", "disagree")]


async def test_ballot_refusals(api: Api) -> None:
    h = await build_hall(api)
    await h.mark_present("D01", "D02")
    vid = (await h.call("POST", h.m("/votes"), h.chair, {"title": "Biểu quyết", "secret": True}, status=201))["id"]
    # absent (D03 is invited but neither online nor reported present)
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D03"], ballot("agree"), status=403)
    assert body["error"]["code"] == "not_present"
    # not in the electorate: a point not invited, an observer, a user without a point
    await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["X"], ballot("agree"), status=403)
    await h.call("POST", f"/api/votes/{vid}/ballots", h.observer, ballot("agree"), status=403)
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.secretary, ballot("agree"), status=403)
    assert body["error"]["code"] == "not_eligible"
    # an unknown choice, a bad ballot id, unknown fields, an unknown vote
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("maybe"), status=400)
    assert body["error"]["code"] == "invalid_choice"
    await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("agree", "short"), status=400)
    await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], {**ballot("agree"), "x": 1}, status=400)
    await h.call("POST", "/api/votes/9999/ballots", h.devices["D01"], ballot("agree"), status=404)
    # cast twice with different ballot ids
    await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("agree"), status=201)
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("abstain"), status=409)
    assert body["error"]["code"] == "already_voted"
    # opening needs the chair and a sane body
    await h.call("POST", h.m("/votes"), h.secretary, {"title": "x"}, status=403)
    await h.call("POST", h.m("/votes"), h.devices["D01"], {"title": "x"}, status=403)
    await h.call("POST", h.m("/votes"), h.chair, {"title": ""}, status=400)
    await h.call("POST", h.m("/votes"), h.chair, {"title": "x", "electorate": "everyone"}, status=400)
    await h.call("POST", h.m("/votes"), h.chair, {"title": "x", "choices": ["a"]}, status=400)
    await h.call("POST", h.m("/votes"), h.chair, {"title": "x", "agenda_item_id": 424242}, status=400)
    custom = await h.call("POST", h.m("/votes"), h.chair, {
        "title": "Chọn phương án", "choices": ["Phương án 1", {"key": "pa2", "label": "Phương án 2"}]}, status=201)
    assert [c["key"] for c in custom["choices"]] == ["c1", "pa2"]


async def test_delegates_electorate(api: Api) -> None:
    h = await build_hall(api)
    vid = (await h.call("POST", h.m("/votes"), h.chair, {"title": "Bầu", "electorate": "delegates"},
                        status=201))["id"]
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.delegate, ballot("agree"), status=403)
    assert body["error"]["code"] == "not_present"
    await h.mark_present("D01")
    await h.call("POST", f"/api/votes/{vid}/ballots", h.delegate, ballot("agree"), status=201)
    body = await h.call("POST", f"/api/votes/{vid}/ballots", h.devices["D01"], ballot("agree"), status=403)
    assert body["error"]["code"] == "not_eligible"
    await h.call("POST", f"/api/votes/{vid}/ballots", h.outsider, ballot("agree"), status=403)


async def test_200_concurrent_ballots_none_lost_none_doubled(api: Api) -> None:
    h = await build_hall(api, n=1)
    reg, att = api.services.registry, api.services.attendance
    codes = [f"C{i:03d}" for i in range(200)]
    voters = {}
    meeting = await api.services.calendar.get(h.meeting_id)
    assert meeting.chair_id is not None
    chair = await api.services.accounts.get(meeting.chair_id)
    for code in codes:
        point = await reg.create(code, f"Xã số {code}", "commune", "D01")
        voters[code] = Api.bearer((await reg.issue_token(point.id)).token)
    await api.services.calendar.invite(h.meeting_id, InviteSelection(codes=tuple(codes)))
    staff = Principal("user", user=chair)
    for code in codes:
        await att.set(h.meeting_id, staff, code, Status.IN_HALL, headcount=3)
    vid = (await h.call("POST", h.m("/votes"), h.chair, {"title": "Biểu quyết đồng loạt", "secret": True},
                        status=201))["id"]
    choices = ["agree", "disagree", "abstain"]
    plan = {code: (choices[i % 3], uuid.uuid4().hex) for i, code in enumerate(codes)}
    # every voter submits twice at once (a reconnecting client resending): 400 requests
    sends = [h.api.client.post(f"/api/votes/{vid}/ballots", headers=voters[code],
                               json={"choice": plan[code][0], "client_ballot_id": plan[code][1]})
             for code in codes for _ in range(2)]
    started = time.perf_counter()
    responses = await asyncio.gather(*sends)
    elapsed = time.perf_counter() - started
    print(f"400 ballot requests (200 voters x 2) in {elapsed:.1f} s")
    bodies = [await r.json() for r in responses]
    assert all(r.status == 201 for r in responses), {r.status for r in responses}
    assert sum(1 for b in bodies if not b["duplicate"]) == 200
    assert sum(1 for b in bodies if b["duplicate"]) == 200
    await h.call("POST", f"/api/votes/{vid}/close", h.chair, status=200)
    result = await h.call("GET", f"/api/votes/{vid}/result", h.chair, status=200)
    assert result["cast"] == 200
    assert result["counts"] == {"agree": 67, "disagree": 67, "abstain": 66}
    assert sum(result["counts"].values()) == 200 and result["named"] == []
