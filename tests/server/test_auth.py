"""Login, tokens, cookies, CSRF and rate limiting over a real loopback server."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from meetings.clock import as_utc, utcnow
from meetings.credentials import hash_token
from meetings.store.tables import sessions, users
from server.app import create_app
from server.keys import SERVICES
from tests.conftest import PASSWORD, Api, make_config

MEETING = {"title": "Hội nghị giao ban trực tuyến", "starts_at": "2026-12-01T08:00:00+07:00"}


async def test_login_gives_token_and_cookie(api: Api) -> None:
    await api.services.accounts.create_user("chutri", PASSWORD, "chair")
    resp = await api.client.post("/api/auth/login", json={"username": "chutri", "password": PASSWORD})
    assert resp.status == 200
    login = await resp.json()
    assert login["token"].startswith("dcs_")
    assert login["user"]["role"] == "chair"
    set_cookie = resp.headers["Set-Cookie"]
    assert "diemcau_session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    me = await api.client.get("/api/auth/me", headers=api.bearer(login))
    assert me.status == 200
    assert (await me.json())["user"]["username"] == "chutri"



async def error_of(resp: object) -> tuple[int, str]:
    body = await resp.json()  # type: ignore[attr-defined]
    return resp.status, body["error"]["code"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", [
    "dcs_" + secrets.token_urlsafe(32),
    "dcp_" + secrets.token_urlsafe(32),
    "dci_" + secrets.token_urlsafe(32),
    "xyz_" + secrets.token_urlsafe(32),
    "dcs_",
    "ab",
])
async def test_forged_bearer_tokens_get_401(api: Api, token: str) -> None:
    resp = await api.client.get("/api/meetings", headers={"Authorization": f"Bearer {token}"})
    assert await error_of(resp) == (401, "invalid_token")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_no_credentials_get_401(api: Api) -> None:
    resp = await api.client.get("/api/meetings")
    assert await error_of(resp) == (401, "unauthenticated")
    resp = await api.client.get("/api/meetings", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status == 401


async def test_forged_cookie_gets_401(api: Api) -> None:
    api.client.session.cookie_jar.update_cookies({"diemcau_session": "dcs_abc.notamac"})
    resp = await api.client.get("/api/auth/me")
    assert await error_of(resp) == (401, "invalid_token")


async def test_expired_session_gets_401(api: Api) -> None:
    login = await api.user("chutri", "chair")
    async with api.services.db.transaction() as conn:
        await conn.execute(sessions.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    resp = await api.client.get("/api/meetings", headers=api.bearer(login))
    assert await error_of(resp) == (401, "token_expired")


async def test_tiny_session_ttl_config(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"auth.session_ttl_hours": 0.05})  # the smallest allowed: 3 minutes
    client = await aiohttp_client(create_app(config))
    services = client.app[SERVICES]
    assert services.accounts.session_ttl == timedelta(minutes=3)
    await services.accounts.create_user("chutri", PASSWORD, "chair")
    resp = await client.post("/api/auth/login", json={"username": "chutri", "password": PASSWORD})
    login = await resp.json()
    expires = as_utc(datetime.fromisoformat(login["expires_at"].replace("Z", "+00:00")))
    assert expires is not None and timedelta(minutes=2) < expires - utcnow() <= timedelta(minutes=3)
    # time passes: the session is past its expiry
    services.accounts.session_ttl = timedelta(seconds=-1)
    resp = await client.post("/api/auth/login", json={"username": "chutri", "password": PASSWORD})
    stale = await resp.json()
    resp = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {stale['token']}"})
    assert await error_of(resp) == (401, "token_expired")


async def test_logout_ends_the_session(api: Api) -> None:
    login = await api.user("chutri", "chair")
    resp = await api.client.post("/api/auth/logout", headers=api.bearer(login))
    assert resp.status == 204
    resp = await api.client.get("/api/auth/me", headers=api.bearer(login))
    assert await error_of(resp) == (401, "token_expired")


async def test_disabled_account_cannot_log_in_and_loses_sessions(api: Api) -> None:
    login = await api.user("daibieu", "delegate")
    user = await api.services.accounts.by_username("daibieu")
    assert user is not None
    await api.services.accounts.set_disabled(user.id, True)
    resp = await api.client.get("/api/auth/me", headers=api.bearer(login))
    assert resp.status == 401
    resp = await api.client.post("/api/auth/login", json={"username": "daibieu", "password": PASSWORD})
    assert await error_of(resp) == (401, "bad_credentials")


@pytest.mark.parametrize("body, code", [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "malformed_json"),
    (b'{"username": "a"}', "missing_field"),
    (b'{"username": 5, "password": "x"}', "invalid_field"),
    (b'{"username": "a", "password": null}', "missing_field"),
])
async def test_login_bad_bodies(api: Api, body: bytes, code: str) -> None:
    resp = await api.client.post("/api/auth/login", data=body, headers={"Content-Type": "application/json"})
    assert await error_of(resp) == (400, code)


async def test_login_rate_limit_per_username(api: Api) -> None:
    await api.services.accounts.create_user("chutri", PASSWORD, "chair")
    await api.services.accounts.create_user("thuky", PASSWORD, "secretary")
    for _ in range(10):
        resp = await api.client.post("/api/auth/login", json={"username": "chutri", "password": "sai-mat-khau"})
        assert resp.status == 401
    resp = await api.client.post("/api/auth/login", json={"username": "chutri", "password": "sai-mat-khau"})
    assert await error_of(resp) == (429, "rate_limited")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # even the right password waits now
    resp = await api.client.post("/api/auth/login", json={"username": "chutri", "password": PASSWORD})
    assert resp.status == 429
    # another user from the same address still logs in
    resp = await api.client.post("/api/auth/login", json={"username": "thuky", "password": PASSWORD})
    assert resp.status == 200


async def test_csrf_for_cookie_authenticated_writes(api: Api) -> None:
    await api.services.accounts.create_user("chutri", PASSWORD, "chair")
    resp = await api.client.post("/api/auth/login", json={"username": "chutri", "password": PASSWORD})
    csrf = (await resp.json())["csrf_token"]
    # the client now holds the session cookie and sends no Authorization header
    assert (await api.client.get("/api/meetings")).status == 200  # reads need no CSRF token
    resp = await api.client.post("/api/meetings", json=MEETING)
    assert await error_of(resp) == (403, "csrf_failed")
    resp = await api.client.post("/api/meetings", json=MEETING, headers={"X-CSRF-Token": "wrong"})
    assert await error_of(resp) == (403, "csrf_failed")
    resp = await api.client.post("/api/meetings", json=MEETING, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201, await resp.text()
    host = f"http://{api.client.host}:{api.client.port}"
    resp = await api.client.post("/api/meetings", json=MEETING, headers={"X-CSRF-Token": csrf, "Origin": host})
    assert resp.status == 201
    resp = await api.client.post("/api/meetings", json=MEETING,
                                 headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert await error_of(resp) == (403, "csrf_failed")


async def test_bearer_writes_need_no_csrf(api: Api) -> None:
    login = await api.user("chutri", "chair")
    api.client.session.cookie_jar.clear()
    resp = await api.client.post("/api/meetings", json=MEETING,
                                 headers={**api.bearer(login), "Origin": "https://elsewhere.example"})
    assert resp.status == 201


async def test_secrets_at_rest_are_hashed(api: Api) -> None:
    login = await api.user("chutri", "chair")
    async with api.services.db.connect() as conn:
        password_hash = await conn.scalar(sa.select(users.c.password_hash))
        token_hashes = list((await conn.execute(sa.select(sessions.c.token_hash))).scalars())
    assert password_hash.startswith("scrypt$") and PASSWORD not in password_hash
    assert token_hashes == [hash_token(login["token"])]
