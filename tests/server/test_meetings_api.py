"""Meetings over HTTP: create, list, view, edit, invite, links, open and close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meetings.store.tables import invitations
from server.config import Config
from tests.conftest import Api

DATA = Path(__file__).resolve().parent.parent / "data"
TITLE = "Hội nghị trực tuyến sơ kết công tác chuyển đổi số 6 tháng đầu năm"
POINTS = ("code,name,level,parent\n"
          "08,UBND tỉnh Tuyên Quang,province,\n"
          "070,UBND thành phố Tuyên Quang,district,08\n"
          "075,UBND huyện Yên Sơn,district,08\n"
          "02212,UBND phường Phan Thiết,commune,070\n"
          "02437,UBND xã Thắng Quân,commune,075\n"
          "02461,UBND xã Lang Quán,commune,075\n")


async def error(resp: Any) -> tuple[int, str]:
    body = await resp.json()
    return resp.status, body["error"]["code"]


class World:
    """Points and one bearer header per role."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.h: dict[str, dict[str, str]] = {}

    async def setup(self) -> World:
        await self.api.services.registry.import_file("p.csv", POINTS.encode())
        for username, role, point in [("quantri", "admin", None), ("chutri", "chair", "08"),
                                      ("chutri2", "chair", None), ("thuky", "secretary", "08"),
                                      ("daibieu", "delegate", "075"), ("quansat", "observer", "02212")]:
            self.h[username] = self.api.bearer(await self.api.user(username, role, point_code=point))
        self.api.client.session.cookie_jar.clear()
        return self

    async def create(self, who: str = "chutri", **body: Any) -> dict[str, Any]:
        payload = {"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "host_point_code": "08", **body}
        resp = await self.api.client.post("/api/meetings", json=payload, headers=self.h[who])
        assert resp.status == 201, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]


@pytest.fixture
async def world(api: Api) -> World:
    return await World(api).setup()


async def test_create_meeting(api: Api, world: World) -> None:
    meeting = await world.create(ends_at="2026-12-01T11:30:00+07:00", secretary_username="thuky",
                                 description="Thành phần: lãnh đạo UBND tỉnh; các sở, ban, ngành.")
    assert meeting["title"] == TITLE and meeting["state"] == "scheduled"
    assert meeting["starts_at"] == "2026-12-01T01:00:00Z"  # stored and shown in UTC
    assert meeting["ends_at"] == "2026-12-01T04:30:00Z"
    assert meeting["chair"]["username"] == "chutri"  # the creating chair becomes the chair
    assert meeting["secretary"]["username"] == "thuky"
    assert meeting["host_point"]["code"] == "08"
    assert [p["code"] for p in meeting["invited_points"]] == ["08"]
    assert meeting["counts"] == {"invited": 1, "province": 1, "district": 0, "commune": 0}
    # a secretary creating one becomes its secretary; an admin becomes neither
    by_secretary = await world.create("thuky", chair_username="chutri2")
    assert (by_secretary["chair"]["username"], by_secretary["secretary"]["username"]) == ("chutri2", "thuky")
    by_admin = await world.create("quantri")
    assert by_admin["chair"] is None and by_admin["secretary"] is None


@pytest.mark.parametrize("body, code", [
    ({"starts_at": "2026-12-01T08:00:00+07:00"}, "missing_field"),
    ({"title": TITLE}, "missing_field"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00"}, "invalid_field"),  # no timezone
    ({"title": TITLE, "starts_at": "mai lúc 8 giờ"}, "invalid_field"),
    ({"title": TITLE, "starts_at": 1764550800}, "invalid_field"),
    ({"title": TITLE, "starts_at": "0001-01-01T00:00:00+07:00"}, "invalid_time"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "ends_at": "9999-12-31T23:59:59-12:00"},
     "invalid_time"),
    ({"title": 42, "starts_at": "2026-12-01T08:00:00+07:00"}, "invalid_field"),
    ({"title": "   ", "starts_at": "2026-12-01T08:00:00+07:00"}, "invalid_title"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "ends_at": "2026-12-01T07:00:00+07:00"},
     "invalid_time"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "host_point_code": "nope"}, "point_not_found"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "chair_username": "daibieu"}, "invalid_role"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "chair_username": "ghost"}, "user_not_found"),
    ({"title": TITLE, "starts_at": "2026-12-01T08:00:00+07:00", "venue": "Hội trường"}, "invalid_field"),
])
async def test_create_meeting_bad_input(api: Api, world: World, body: dict[str, Any], code: str) -> None:
    resp = await api.client.post("/api/meetings", json=body, headers=world.h["chutri"])
    assert await error(resp) == (400, code)


async def test_create_meeting_malformed_json(api: Api, world: World) -> None:
    for raw in (b"{", b"null", b"[]", b"\xff\xfe"):
        resp = await api.client.post("/api/meetings", data=raw,
                                     headers={**world.h["chutri"], "Content-Type": "application/json"})
        assert await error(resp) == (400, "malformed_json"), raw


async def test_invite_and_links(api: Api, world: World, config: Config) -> None:
    meeting = await world.create()
    mid = meeting["id"]
    resp = await api.client.post(f"/api/meetings/{mid}/invitations", json={"under": "075"},
                                 headers=world.h["chutri"])
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    result = await resp.json()
    assert [p["code"] for p in result["invited"]] == ["02437", "02461", "075"]
    assert result["already"] == []
    base = f"http://{api.client.host}:{api.client.port}/join/dci_"
    assert set(result["links"]) == {"02437", "02461", "075"}
    assert all(link.startswith(base) for link in result["links"].values())
    again = await (await api.client.post(f"/api/meetings/{mid}/invitations",
                                         json={"codes": ["075", "070"], "level": "district"},
                                         headers=world.h["chutri"])).json()
    assert [p["code"] for p in again["invited"]] == ["070"]
    assert [p["code"] for p in again["already"]] == ["075"]
    # the link is a bearer credential for that point and meeting only
    token = result["links"]["02437"].rsplit("/", 1)[1]
    link = {"Authorization": f"Bearer {token}"}
    me = await (await api.client.get("/api/auth/me", headers=link)).json()
    assert (me["kind"], me["meeting_id"], me["point"]["code"]) == ("point", mid, "02437")
    seen = await (await api.client.get(f"/api/meetings/{mid}", headers=link)).json()
    assert seen["counts"] == {"invited": 5, "province": 1, "district": 2, "commune": 2}
    listed = await (await api.client.get("/api/meetings", headers=link)).json()
    assert [m["id"] for m in listed] == [mid]
    # invitations listing (staff) shows expiry but never tokens
    resp = await api.client.get(f"/api/meetings/{mid}/invitations", headers=world.h["thuky"])
    assert resp.status == 403  # thuky attends from 08 but is not this meeting's secretary
    invs = await (await api.client.get(f"/api/meetings/{mid}/invitations", headers=world.h["chutri"])).json()
    assert [i["point"]["code"] for i in invs] == ["08", "070", "075", "02437", "02461"]
    assert all(not i["link_expired"] and "token" not in i for i in invs)


async def test_public_url_shapes_links(api: Api, world: World) -> None:
    from dataclasses import replace

    services = api.services
    services.config = replace(services.config, server=replace(services.config.server,
                                                              public_url="https://hop.tuyenquang.gov.vn/"))
    meeting = await world.create()
    result = await (await api.client.post(f"/api/meetings/{meeting['id']}/invitations", json={"codes": ["070"]},
                                          headers=world.h["chutri"])).json()
    assert result["links"]["070"].startswith("https://hop.tuyenquang.gov.vn/join/dci_")


@pytest.mark.parametrize("body, status, code", [
    ({}, 400, "empty_selection"),
    ({"codes": "070"}, 400, "invalid_field"),
    ({"codes": [1, 2]}, 400, "invalid_field"),
    ({"codes": ["070", "X9"]}, 400, "unknown_points"),
    ({"under": "X9"}, 400, "unknown_points"),
    ({"level": "village"}, 400, "invalid_field"),
    ({"codes": ["070"], "extra": 1}, 400, "invalid_field"),
])
async def test_invite_bad_input(api: Api, world: World, body: dict[str, Any], status: int, code: str) -> None:
    meeting = await world.create()
    resp = await api.client.post(f"/api/meetings/{meeting['id']}/invitations", json=body, headers=world.h["chutri"])
    assert await error(resp) == (status, code)


async def test_renew_and_uninvite(api: Api, world: World) -> None:
    meeting = await world.create()
    mid = meeting["id"]
    result = await (await api.client.post(f"/api/meetings/{mid}/invitations", json={"codes": ["070"]},
                                          headers=world.h["chutri"])).json()
    old = {"Authorization": "Bearer " + result["links"]["070"].rsplit("/", 1)[1]}
    pid = result["invited"][0]["id"]
    resp = await api.client.post(f"/api/meetings/{mid}/invitations/{pid}/link", headers=world.h["chutri"])
    renewed = await resp.json()
    assert renewed["code"] == "070" and "/join/dci_" in renewed["link"] and renewed["expires_at"].endswith("Z")
    assert (await api.client.get(f"/api/meetings/{mid}", headers=old)).status == 401
    new = {"Authorization": "Bearer " + renewed["link"].rsplit("/", 1)[1]}
    assert (await api.client.get(f"/api/meetings/{mid}", headers=new)).status == 200
    resp = await api.client.delete(f"/api/meetings/{mid}/invitations/{pid}", headers=world.h["chutri"])
    assert resp.status == 204
    assert (await api.client.get(f"/api/meetings/{mid}", headers=new)).status == 401
    resp = await api.client.delete(f"/api/meetings/{mid}/invitations/{pid}", headers=world.h["chutri"])
    assert await error(resp) == (404, "not_invited")
    host_id = meeting["host_point"]["id"]
    resp = await api.client.delete(f"/api/meetings/{mid}/invitations/{host_id}", headers=world.h["chutri"])
    assert await error(resp) == (409, "host_point")


async def test_expired_link_is_401_and_flagged(api: Api, world: World) -> None:
    from datetime import timedelta

    from meetings.clock import utcnow

    meeting = await world.create()
    result = await (await api.client.post(f"/api/meetings/{meeting['id']}/invitations", json={"codes": ["070"]},
                                          headers=world.h["chutri"])).json()
    async with api.services.db.transaction() as conn:
        await conn.execute(invitations.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    link = {"Authorization": "Bearer " + result["links"]["070"].rsplit("/", 1)[1]}
    assert await error(await api.client.get("/api/meetings", headers=link)) == (401, "token_expired")
    invs = await (await api.client.get(f"/api/meetings/{meeting['id']}/invitations",
                                       headers=world.h["chutri"])).json()
    assert all(i["link_expired"] for i in invs)


async def test_list_visibility_and_filters(api: Api, world: World) -> None:
    a = await world.create(title="Họp A — Đông Lai")  # chair chutri, host 08
    b = await world.create("chutri2", title="Họp B", host_point_code="075", starts_at="2026-12-02T08:00:00+07:00")
    c = await world.create("quantri", title="Họp C", host_point_code=None, starts_at="2026-12-03T08:00:00+07:00")

    async def ids(who: str, query: str = "") -> list[int]:
        resp = await api.client.get(f"/api/meetings{query}", headers=world.h[who])
        assert resp.status == 200, await resp.text()
        return [m["id"] for m in await resp.json()]

    assert await ids("quantri") == [c["id"], b["id"], a["id"]]
    assert await ids("chutri") == [a["id"]]  # chairs A; its point 08 is invited to A only
    assert await ids("chutri2") == [b["id"]]
    assert await ids("thuky") == [a["id"]]  # attends from 08
    assert await ids("daibieu") == [b["id"]]  # attends from 075, the host of B
    assert await ids("quansat") == []
    assert await ids("quantri", "?q=dong lai") == [a["id"]]
    assert await ids("quantri", "?limit=1&offset=1") == [b["id"]]
    await api.client.post(f"/api/meetings/{b['id']}/open", headers=world.h["chutri2"])
    assert await ids("quantri", "?state=open") == [b["id"]]
    for bad in ("?state=running", "?limit=0", "?limit=x", "?offset=-1"):
        assert await error(await api.client.get(f"/api/meetings{bad}", headers=world.h["quantri"])) == (
            400, "invalid_query"), bad


async def test_get_meeting_scope(api: Api, world: World) -> None:
    a = await world.create()
    path = f"/api/meetings/{a['id']}"
    assert (await api.client.get(path, headers=world.h["thuky"])).status == 200  # point 08 invited
    assert (await api.client.get(path, headers=world.h["chutri2"])).status == 403
    assert (await api.client.get(path, headers=world.h["daibieu"])).status == 403
    await api.client.post(f"{path}/invitations", json={"codes": ["075"]}, headers=world.h["chutri"])
    assert (await api.client.get(path, headers=world.h["daibieu"])).status == 200
    assert await error(await api.client.get("/api/meetings/9999", headers=world.h["quantri"])) == (
        404, "meeting_not_found")
    assert await error(await api.client.get("/api/meetings/abc", headers=world.h["quantri"])) == (400, "invalid_path")


async def test_update_meeting(api: Api, world: World) -> None:
    a = await world.create(secretary_username="thuky")
    path = f"/api/meetings/{a['id']}"
    resp = await api.client.patch(path, json={"title": "Hội nghị giao ban tháng 12", "ends_at": None,
                                              "starts_at": "2026-12-05T14:00:00+07:00"}, headers=world.h["thuky"])
    assert resp.status == 200, await resp.text()
    updated = await resp.json()
    assert (updated["title"], updated["starts_at"]) == ("Hội nghị giao ban tháng 12", "2026-12-05T07:00:00Z")
    # only the chair (or an admin) may hand the chair over
    resp = await api.client.patch(path, json={"chair_username": "chutri2"}, headers=world.h["thuky"])
    assert await error(resp) == (403, "forbidden")
    resp = await api.client.patch(path, json={"chair_username": "chutri2"}, headers=world.h["chutri"])
    assert (await resp.json())["chair"]["username"] == "chutri2"
    assert (await api.client.patch(path, json={"title": "X"}, headers=world.h["chutri"])).status == 403
    # a meeting without a chair can be given one by its secretary
    chairless = await world.create("thuky")
    assert chairless["chair"] is None
    resp = await api.client.patch(f"/api/meetings/{chairless['id']}", json={"chair_username": "chutri"},
                                  headers=world.h["thuky"])
    assert (await resp.json())["chair"]["username"] == "chutri"
    for bad, code in [({"starts_at": None}, "invalid_field"), ({"title": ""}, "invalid_title"),
                      ({"ends_at": "2026-12-01T00:00:00+07:00"}, "invalid_time"), ({"state": "open"}, "invalid_field"),
                      ({"host_point_code": "nope"}, "point_not_found")]:
        assert await error(await api.client.patch(path, json=bad, headers=world.h["quantri"])) == (400, code), bad


async def test_open_close_lifecycle(api: Api, world: World) -> None:
    a = await world.create()
    mid = a["id"]
    result = await (await api.client.post(f"/api/meetings/{mid}/invitations", json={"codes": ["070"]},
                                          headers=world.h["chutri"])).json()
    link = {"Authorization": "Bearer " + result["links"]["070"].rsplit("/", 1)[1]}
    assert (await api.client.post(f"/api/meetings/{mid}/open", headers=world.h["thuky"])).status == 403
    assert (await api.client.post(f"/api/meetings/{mid}/open", headers=world.h["chutri2"])).status == 403
    assert (await api.client.post(f"/api/meetings/{mid}/open", headers=link)).status == 403
    opened = await (await api.client.post(f"/api/meetings/{mid}/open", headers=world.h["chutri"])).json()
    assert opened["state"] == "open" and opened["opened_at"]
    closed = await (await api.client.post(f"/api/meetings/{mid}/close", headers=world.h["chutri"])).json()
    assert closed["state"] == "closed" and closed["closed_at"]
    resp = await api.client.post(f"/api/meetings/{mid}/open", headers=world.h["chutri"])
    assert await error(resp) == (409, "invalid_transition")
    assert await error(await api.client.get("/api/meetings", headers=link)) == (401, "meeting_closed")
    resp = await api.client.post(f"/api/meetings/{mid}/invitations", json={"codes": ["075"]},
                                 headers=world.h["chutri"])
    assert await error(resp) == (409, "meeting_closed")
    assert await error(await api.client.patch(f"/api/meetings/{mid}", json={"title": "Y"},
                                              headers=world.h["chutri"])) == (409, "meeting_closed")
