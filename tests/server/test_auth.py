"""Login, tokens, cookies, CSRF and rate limiting over a real loopback server."""

from __future__ import annotations

from tests.conftest import PASSWORD, Api


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
