"""The audit log over real HTTP: who did what and when, filters and paging, admins only, and
never a secret ballot."""

from __future__ import annotations

import uuid

from tests.conftest import Api
from tests.server.test_floor_api_kit import build_hall


async def test_audit_records_conduct_and_role_changes(api: Api) -> None:
    h = await build_hall(api)
    await h.mark_present("D01", "D02")
    await h.call("POST", h.m("/floor/grant"), h.chair, {"point_code": "D02"}, status=200)
    vote = await h.call("POST", h.m("/votes"), h.chair, {"title": "Kín", "secret": True}, status=201)
    await h.call("POST", f"/api/votes/{vote['id']}/ballots", h.devices["D01"],
                 {"choice": "disagree", "client_ballot_id": uuid.uuid4().hex}, status=201)
    await h.call("POST", f"/api/votes/{vote['id']}/close", h.chair, status=200)
    await h.call("POST", h.m("/minutes"), h.secretary, {"conclusions": "Kết luận"}, status=201)
    user = await api.services.accounts.by_username("quansat")
    assert user is not None
    await h.call("PATCH", f"/api/users/{user.id}", h.admin, {"role": "delegate"}, status=200)

    entries = (await h.call("GET", "/api/audit", h.admin, status=200))["entries"]
    actions = [e["action"] for e in entries]
    for wanted in ("floor.grant", "vote.open", "vote.close", "minutes.generate", "attendance.set", "user.role"):
        assert wanted in actions, (wanted, actions)
    assert entries == sorted(entries, key=lambda e: -e["id"])  # newest first
    grant = next(e for e in entries if e["action"] == "floor.grant")
    assert grant["actor_label"] == "Nguyễn Văn Chủ" and grant["actor_kind"] == "user"
    assert grant["target"] == "D02" and grant["meeting_id"] == h.meeting_id and grant["at"].endswith("Z")
    role = next(e for e in entries if e["action"] == "user.role")
    assert role["details"] == {"from": "observer", "to": "delegate"} and role["target"] == "quansat"
    # no ballot, no choice anywhere
    text = str(entries)
    assert "disagree" not in text and "ballot" not in " ".join(actions)
    # filters and paging
    only = (await h.call("GET", f"/api/audit?meeting_id={h.meeting_id}&action=vote.open", h.admin,
                         status=200))["entries"]
    assert [e["action"] for e in only] == ["vote.open"]
    page = (await h.call("GET", "/api/audit?limit=2", h.admin, status=200))["entries"]
    older = (await h.call("GET", f"/api/audit?limit=2&before_id={page[-1]['id']}", h.admin, status=200))["entries"]
    assert len(page) == 2 and all(e["id"] < page[-1]["id"] for e in older)


async def test_audit_is_for_admins_only(api: Api) -> None:
    h = await build_hall(api)
    for who in (h.chair, h.secretary, h.delegate, h.devices["D01"]):
        await h.call("GET", "/api/audit", who, status=403)
    await h.call("GET", "/api/audit", None, status=401)
    for bad in ("limit=0", "limit=abc", "meeting_id=-1", "before_id=x"):
        body = await h.call("GET", f"/api/audit?{bad}", h.admin, status=400)
        assert body["error"]["code"] == "invalid_query"
    # append-only: there is no route that changes or deletes entries
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        status, _ = await h.request(method, "/api/audit", h.admin, {})
        assert status == 405
