"""User management over HTTP: admin only; everyone may change their own password."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from meetings.store.tables import users
from tests.conftest import PASSWORD, Api

NEW = {"username": "daibieu.yenson", "password": "mat-khau-dai-bieu", "role": "delegate",
       "display_name": "Hoàng Văn Hùng", "point_code": "075"}


async def seed_points(api: Api) -> None:
    await api.services.registry.import_file(
        "p.csv", "code,name,level,parent\n08,UBND tỉnh Tuyên Quang,tỉnh,\n075,UBND huyện Yên Sơn,huyện,08\n".encode())


async def error(resp: Any) -> tuple[int, str]:
    body = await resp.json()
    return resp.status, body["error"]["code"]


async def test_admin_creates_lists_and_gets_users(api: Api) -> None:
    await seed_points(api)
    admin = await api.user("quantri", "admin")
    resp = await api.client.post("/api/users", json=NEW, headers=api.bearer(admin))
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert {k: created[k] for k in ("username", "role", "display_name", "point_code", "disabled")} == {
        "username": "daibieu.yenson", "role": "delegate", "display_name": "Hoàng Văn Hùng",
        "point_code": "075", "disabled": False}
    assert "password" not in created and "password_hash" not in created
    listed = await (await api.client.get("/api/users", headers=api.bearer(admin))).json()
    assert [u["username"] for u in listed] == ["daibieu.yenson", "quantri"]
    only = await (await api.client.get("/api/users?role=delegate&q=bieu", headers=api.bearer(admin))).json()
    assert [u["point_code"] for u in only] == ["075"]
    one = await (await api.client.get(f"/api/users/{created['id']}", headers=api.bearer(admin))).json()
    assert one == created
    # the new account logs in with its password; the database holds a scrypt hash
    assert (await api.login("daibieu.yenson", NEW["password"]))["user"]["role"] == "delegate"
    async with api.services.db.connect() as conn:
        stored = await conn.scalar(sa.select(users.c.password_hash).where(users.c.username == "daibieu.yenson"))
    assert stored.startswith("scrypt$") and NEW["password"] not in stored


@pytest.mark.parametrize("body, status, code", [
    ({**NEW, "username": None}, 400, "missing_field"),
    ({k: v for k, v in NEW.items() if k != "password"}, 400, "missing_field"),
    ({**NEW, "role": "king"}, 400, "invalid_role"),
    ({**NEW, "role": 3}, 400, "invalid_field"),
    ({**NEW, "password": "short"}, 400, "weak_password"),
    ({**NEW, "username": "Có Dấu"}, 400, "invalid_username"),
    ({**NEW, "point_code": "nope"}, 400, "point_not_found"),
    ({**NEW, "password": ["x"]}, 400, "invalid_field"),
])
async def test_create_user_bad_input(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    await seed_points(api)
    admin = await api.user("quantri", "admin")
    resp = await api.client.post("/api/users", json=body, headers=api.bearer(admin))
    assert await error(resp) == (status, code)


async def test_create_user_malformed_and_duplicate(api: Api) -> None:
    await seed_points(api)
    admin = await api.user("quantri", "admin")
    resp = await api.client.post("/api/users", data=b"{", headers={**api.bearer(admin),
                                                                    "Content-Type": "application/json"})
    assert await error(resp) == (400, "malformed_json")
    resp = await api.client.post("/api/users", data=b'"text"', headers=api.bearer(admin))
    assert await error(resp) == (400, "malformed_json")
    assert (await api.client.post("/api/users", json=NEW, headers=api.bearer(admin))).status == 201
    resp = await api.client.post("/api/users", json={**NEW, "username": "DAIBIEU.YENSON"}, headers=api.bearer(admin))
    assert await error(resp) == (409, "username_taken")


async def test_non_admins_cannot_manage_users(api: Api) -> None:
    chair = await api.user("chutri", "chair")
    api.client.session.cookie_jar.clear()  # bearer only; anonymous means no cookie either
    target = await api.services.accounts.by_username("chutri")
    assert target is not None
    for method, path, body in [
        ("GET", "/api/users", None), ("POST", "/api/users", NEW), ("GET", f"/api/users/{target.id}", None),
        ("PATCH", f"/api/users/{target.id}", {"role": "admin"}),
        ("POST", f"/api/users/{target.id}/disable", None), ("POST", f"/api/users/{target.id}/enable", None),
        ("POST", f"/api/users/{target.id}/password", {"password": "mat-khau-moi-2026"}),
    ]:
        resp = await api.client.request(method, path, json=body, headers=api.bearer(chair))
        assert await error(resp) == (403, "forbidden"), (method, path)
        resp = await api.client.request(method, path, json=body)
        assert resp.status == 401, (method, path)


async def test_update_disable_enable_reset(api: Api) -> None:
    await seed_points(api)
    admin = await api.user("quantri", "admin")
    member = await api.user("daibieu", "delegate")
    user_id = member["user"]["id"]
    h = api.bearer(admin)
    resp = await api.client.patch(f"/api/users/{user_id}", json={"display_name": "Lê Thị Mai", "role": "observer",
                                                                  "point_code": "075"}, headers=h)
    assert resp.status == 200, await resp.text()
    assert {k: (await resp.json())[k] for k in ("display_name", "role", "point_code")} == {
        "display_name": "Lê Thị Mai", "role": "observer", "point_code": "075"}
    resp = await api.client.patch(f"/api/users/{user_id}", json={"point_code": None}, headers=h)
    assert (await resp.json())["point_code"] is None
    resp = await api.client.patch(f"/api/users/{user_id}", json={"password": "x"}, headers=h)
    assert await error(resp) == (400, "invalid_field")
    resp = await api.client.patch(f"/api/users/{user_id}", json={"role": "emperor"}, headers=h)
    assert await error(resp) == (400, "invalid_role")
    # disabling ends the member's session at once
    resp = await api.client.post(f"/api/users/{user_id}/disable", headers=h)
    assert (await resp.json())["disabled"] is True
    assert (await api.client.get("/api/meetings", headers=api.bearer(member))).status == 401
    resp = await api.client.post(f"/api/users/{user_id}/enable", headers=h)
    assert (await resp.json())["disabled"] is False
    # a reset password works and the old one does not
    resp = await api.client.post(f"/api/users/{user_id}/password", json={"password": "mat-khau-moi-2026"}, headers=h)
    assert resp.status == 204
    resp = await api.client.post("/api/auth/login", json={"username": "daibieu", "password": PASSWORD})
    assert resp.status == 401
    assert (await api.login("daibieu", "mat-khau-moi-2026"))["user"]["id"] == user_id
    resp = await api.client.post(f"/api/users/{user_id}/password", json={"password": "short"}, headers=h)
    assert await error(resp) == (400, "weak_password")


async def test_unknown_and_bad_user_ids(api: Api) -> None:
    admin = await api.user("quantri", "admin")
    h = api.bearer(admin)
    assert await error(await api.client.get("/api/users/9999", headers=h)) == (404, "user_not_found")
    assert await error(await api.client.get("/api/users/abc", headers=h)) == (400, "invalid_path")
    assert await error(await api.client.get("/api/users/0", headers=h)) == (400, "invalid_path")
    assert await error(await api.client.post("/api/users/9999/disable", headers=h)) == (404, "user_not_found")
    resp = await api.client.post("/api/users/9999/password", json={"password": "mat-khau-moi-2026"}, headers=h)
    assert await error(resp) == (404, "user_not_found")


async def test_admin_cannot_lock_themselves_out(api: Api) -> None:
    admin = await api.user("quantri", "admin")
    me = admin["user"]["id"]
    h = api.bearer(admin)
    assert await error(await api.client.post(f"/api/users/{me}/disable", headers=h)) == (409, "cannot_change_self")
    resp = await api.client.patch(f"/api/users/{me}", json={"role": "chair"}, headers=h)
    assert await error(resp) == (409, "cannot_change_self")
    resp = await api.client.patch(f"/api/users/{me}", json={"role": "admin", "display_name": "Quản trị"}, headers=h)
    assert resp.status == 200


async def test_change_own_password(api: Api) -> None:
    login = await api.user("thuky", "secretary")
    other = await api.login("thuky")
    h = api.bearer(login)
    resp = await api.client.post("/api/users/me/password",
                                 json={"current_password": "sai-mat-khau", "new_password": "mat-khau-moi-2026"},
                                 headers=h)
    assert await error(resp) == (400, "wrong_password")
    resp = await api.client.post("/api/users/me/password", json={"current_password": PASSWORD}, headers=h)
    assert await error(resp) == (400, "missing_field")
    resp = await api.client.post("/api/users/me/password",
                                 json={"current_password": PASSWORD, "new_password": "ngan"}, headers=h)
    assert await error(resp) == (400, "weak_password")
    resp = await api.client.post("/api/users/me/password",
                                 json={"current_password": PASSWORD, "new_password": "mat-khau-moi-2026"}, headers=h)
    assert resp.status == 204
    assert (await api.client.get("/api/auth/me", headers=h)).status == 200  # this session stays
    assert (await api.client.get("/api/auth/me", headers=api.bearer(other))).status == 401  # others end
    await api.login("thuky", "mat-khau-moi-2026")


async def test_change_own_password_is_rate_limited(api: Api) -> None:
    login = await api.user("thuky", "secretary")
    body = {"current_password": "sai-mat-khau", "new_password": "mat-khau-moi-2026"}
    for _ in range(10):
        resp = await api.client.post("/api/users/me/password", json=body, headers=api.bearer(login))
        assert resp.status == 400
    resp = await api.client.post("/api/users/me/password", json=body, headers=api.bearer(login))
    assert await error(resp) == (429, "rate_limited")
    assert "Retry-After" in resp.headers


async def test_devices_have_no_own_password(api: Api) -> None:
    await seed_points(api)
    point = await api.services.registry.by_code("075")
    token = (await api.services.registry.issue_token(point.id)).token
    resp = await api.client.post("/api/users/me/password",
                                 json={"current_password": "x", "new_password": "mat-khau-moi-2026"},
                                 headers=api.bearer(token))
    assert await error(resp) == (403, "forbidden")
