"""The permission matrix over real HTTP: every caller kind × every REST route family.

The expected statuses are written as a table; one world (points, accounts, two meetings,
a device token, an invitation link) is built once and every cell is requested. Mismatches
are collected and reported together, so a failure shows the whole wrong row.

Subjects:
- admin, chair (chair of meeting A), secretary (secretary of A, attends from the host 08),
  delegate (attends from 075, invited to A), observer (attends from 02212, invited only to B),
- device: the hall PC token of 02437 (invited to A),
- link: the invitation link of 070 to meeting A (070 is invited to B as well),
- anonymous: no credentials at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import Api

SUBJECTS = ("admin", "chair", "secretary", "delegate", "observer", "device", "link", "anonymous")

TABLE = """
route                admin chair secretary delegate observer device link anonymous
users.list           200   403   403       403      403      403    403  401
users.create         201   403   403       403      403      403    403  401
users.get            200   403   403       403      403      403    403  401
users.disable        200   403   403       403      403      403    403  401
account.password     400   400   400       400      400      403    403  401
points.list          200   200   200       403      403      403    403  401
points.tree          200   200   200       403      403      403    403  401
points.get           200   200   200       403      403      403    403  401
points.create        201   403   403       403      403      403    403  401
points.import        200   403   403       403      403      403    403  401
points.enable        200   403   403       403      403      403    403  401
points.token         201   403   403       403      403      403    403  401
meetings.list        200   200   200       200      200      200    200  401
meetings.create      201   201   201       403      403      403    403  401
A.view               200   200   200       200      403      200    200  401
A.edit               200   200   200       403      403      403    403  401
A.invite             200   200   200       403      403      403    403  401
A.invitations        200   200   200       403      403      403    403  401
A.renew_link         200   200   200       403      403      403    403  401
A.open               200   200   403       403      403      403    403  401
B.view               200   403   403       403      200      403    403  401
B.edit               200   403   403       403      403      403    403  401
B.invite             200   403   403       403      403      403    403  401
B.open               200   403   403       403      403      403    403  401
missing.view         404   404   404       404      404      404    404  401
"""


def parse_table(text: str) -> dict[str, dict[str, int]]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    assert tuple(header) == SUBJECTS
    return {row[0]: dict(zip(header, map(int, row[1:]), strict=True)) for row in rows}


@dataclass
class World:
    api: Api
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]
    counter: Callable[[], int]


async def build_world(api: Api) -> World:
    services = api.services
    await services.registry.import_file("p.csv", (
        "code,name,level,parent\n08,UBND tỉnh Tuyên Quang,tỉnh,\n070,UBND thành phố Tuyên Quang,huyện,08\n"
        "075,UBND huyện Yên Sơn,huyện,08\n02212,UBND phường Phan Thiết,xã,070\n"
        "02437,UBND xã Thắng Quân,xã,075\n02461,UBND xã Lang Quán,xã,075\n").encode())
    headers: dict[str, dict[str, str]] = {}
    for name, username, role, point in [("admin", "quantri", "admin", None), ("chair", "chutri", "chair", "08"),
                                        ("chair_b", "chutri2", "chair", None),
                                        ("secretary", "thuky", "secretary", "08"),
                                        ("delegate", "daibieu", "delegate", "075"),
                                        ("observer", "quansat", "observer", "02212")]:
        headers[name] = api.bearer(await api.user(username, role, point_code=point))
    api.client.session.cookie_jar.clear()

    async def post(path: str, body: dict[str, Any], who: str) -> dict[str, Any]:
        resp = await api.client.post(path, json=body, headers=headers[who])
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()  # type: ignore[no-any-return]

    a = await post("/api/meetings", {"title": "Họp A", "starts_at": "2026-12-01T08:00:00+07:00",
                                     "host_point_code": "08", "secretary_username": "thuky"}, "chair")
    b = await post("/api/meetings", {"title": "Họp B", "starts_at": "2026-12-02T08:00:00+07:00",
                                     "host_point_code": "02212"}, "chair_b")
    invited_a = await post(f"/api/meetings/{a['id']}/invitations", {"codes": ["075", "02437", "070"]}, "chair")
    await post(f"/api/meetings/{b['id']}/invitations", {"codes": ["070"]}, "chair_b")
    device_point = await services.registry.by_code("02437")
    headers["device"] = api.bearer((await services.registry.issue_token(device_point.id)).token)
    headers["link"] = api.bearer(invited_a["links"]["070"].rsplit("/", 1)[1])
    headers["anonymous"] = {}
    target = await services.accounts.by_username("chutri2")
    assert target is not None
    ids = {"A": a["id"], "B": b["id"], "user": target.id, "point": device_point.id,
           "invited_point": (await services.registry.by_code("075")).id}
    return World(api, headers, ids, itertools.count(1).__next__)


def request_for(route: str, world: World) -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
    """(method, path, JSON body, extra headers) of one route family; bodies are unique per call."""
    n = world.counter()
    ids = world.ids
    meeting = {"title": f"Họp số {n}", "starts_at": "2026-12-03T08:00:00+07:00"}
    table: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "users.list": ("GET", "/api/users", None),
        "users.create": ("POST", "/api/users", {"username": f"user{n}", "password": "mat-khau-moi-2026",
                                               "role": "observer"}),
        "users.get": ("GET", f"/api/users/{ids['user']}", None),
        "users.disable": ("POST", f"/api/users/{ids['user']}/disable", None),
        "account.password": ("POST", "/api/users/me/password",
                             {"current_password": "sai-mat-khau", "new_password": "mat-khau-moi-2026"}),
        "points.list": ("GET", "/api/points?q=yen son", None),
        "points.tree": ("GET", "/api/points/tree", None),
        "points.get": ("GET", f"/api/points/{ids['point']}", None),
        "points.create": ("POST", "/api/points", {"code": f"X{n}", "name": f"UBND xã Mới {n}", "level": "commune",
                                                  "parent_code": "075"}),
        "points.enable": ("POST", f"/api/points/{ids['point']}/enable", None),
        "points.token": ("POST", f"/api/points/{ids['point']}/tokens", {"label": "PC"}),
        "meetings.list": ("GET", "/api/meetings", None),
        "meetings.create": ("POST", "/api/meetings", meeting),
        "missing.view": ("GET", "/api/meetings/99999", None),
    }
    if route == "points.import":
        return ("POST", "/api/points/import", None, {"Content-Type": "text/csv",
                                                     "X-Body": f"code,name,level,parent\nY{n},Xã {n},xã,075\n"})
    if route in table:
        return (*table[route], {})
    meeting_name, action = route.split(".")
    mid = ids[meeting_name]
    per_meeting: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "view": ("GET", f"/api/meetings/{mid}", None),
        "edit": ("PATCH", f"/api/meetings/{mid}", {"description": f"Nội dung {n}"}),
        "invite": ("POST", f"/api/meetings/{mid}/invitations", {"codes": ["02461"]}),
        "invitations": ("GET", f"/api/meetings/{mid}/invitations", None),
        "renew_link": ("POST", f"/api/meetings/{mid}/invitations/{ids['invited_point']}/link", None),
        "open": ("POST", f"/api/meetings/{mid}/open", None),
    }
    return (*per_meeting[action], {})


async def test_permission_matrix(api: Api) -> None:
    world = await build_world(api)
    expected = parse_table(TABLE)
    wrong: list[str] = []
    for route, row in expected.items():
        for subject in SUBJECTS:
            method, path, body, extra = request_for(route, world)
            headers = {**world.headers[subject], **extra}
            raw = headers.pop("X-Body", None)
            if raw is not None:
                resp = await api.client.request(method, path, data=raw.encode(), headers=headers)
            else:
                resp = await api.client.request(method, path, json=body, headers=headers)
            if resp.status != row[subject]:
                wrong.append(f"{route:<18} {subject:<10} expected {row[subject]}, got {resp.status}: "
                             f"{(await resp.text())[:160]}")
            elif resp.status in (401, 403):
                error = (await resp.json())["error"]
                assert error["code"] in {"unauthenticated", "forbidden"}, (route, subject, error)
    assert not wrong, "permission matrix mismatches:\n" + "\n".join(wrong)


def test_table_covers_every_subject_and_meeting_route() -> None:
    table = parse_table(TABLE)
    assert all(tuple(row) == SUBJECTS for row in table.values())
    assert {"A.view", "A.edit", "A.invite", "A.open", "B.view", "B.open"} <= set(table)
    # scope: chair of A cannot control B; the link of A cannot see B though its point is invited there
    assert (table["A.open"]["chair"], table["B.open"]["chair"]) == (200, 403)
    assert (table["A.view"]["link"], table["B.view"]["link"]) == (200, 403)


async def test_invitation_link_opens_only_its_meeting(api: Api) -> None:
    world = await build_world(api)
    link = world.headers["link"]
    listed = await (await api.client.get("/api/meetings", headers=link)).json()
    assert [m["id"] for m in listed] == [world.ids["A"]]
    # a device of the same point sees both meetings its point is invited to
    point = await api.services.registry.by_code("070")
    device = api.bearer((await api.services.registry.issue_token(point.id)).token)
    listed = await (await api.client.get("/api/meetings", headers=device)).json()
    assert sorted(m["id"] for m in listed) == sorted([world.ids["A"], world.ids["B"]])
