"""Login, logout and "who am I"."""

from __future__ import annotations

from aiohttp import web

from meetings.clock import isoformat, utcnow
from meetings.errors import Unauthenticated

from ..auth import (
    clear_session_cookie,
    csrf_token,
    current_principal,
    session_token,
    set_session_cookie,
)
from ..keys import LOGIN_LIMIT_ADDR, LOGIN_LIMIT_USER, METRICS, SERVICES
from ..openapi import operation
from ..ws.revalidate import withdrawn
from .body import field_str, json_body
from .schemas import ref
from .views import point_json, user_json


def client_address(request: web.Request) -> str:
    return request.remote or "?"


@operation("login", "Log in with username and password", tags=["auth"], auth=False,
           request=ref("LoginRequest"), response=ref("LoginResponse"), errors=(400, 401, 429),
           description="Gives a bearer token; browsers also get an HttpOnly session cookie. "
           "Failed attempts are rate-limited per username and per client address.")
async def login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await json_body(request)
    username = field_str(body, "username", max_len=64).strip().lower()
    password = field_str(body, "password", max_len=1024)
    by_user, by_addr = request.app[LOGIN_LIMIT_USER], request.app[LOGIN_LIMIT_ADDR]
    addr = client_address(request)
    by_user.check(username)
    by_addr.check(addr)
    try:
        user = await services.accounts.authenticate(username, password)
    except Unauthenticated:
        by_user.hit(username)
        by_addr.hit(addr)
        request.app[METRICS].logins.labels(result="failure").inc()
        raise
    by_user.reset(username)
    token, _ = await services.accounts.open_session(user, client=request.headers.get("User-Agent", ""))
    request.app[METRICS].logins.labels(result="success").inc()
    point_code = (await services.registry.get(user.point_id)).code if user.point_id else None
    response = web.json_response({
        "token": token.token,
        "expires_at": isoformat(token.expires_at),
        "csrf_token": csrf_token(services.secret, token.token),
        "user": user_json(user, point_code=point_code),
    })
    max_age = int((token.expires_at - utcnow()).total_seconds()) if token.expires_at else 3600
    set_session_cookie(response, request, token.token, max_age)
    return response


@operation("logout", "End this login session", tags=["auth"], status=204, errors=(401,))
async def logout(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    if principal.session_id is not None:
        await request.app[SERVICES].accounts.close_session(principal.session_id)
        await withdrawn(request.app[SERVICES], "logout")
    response = web.Response(status=204)
    clear_session_cookie(response)
    return response


@operation("getCurrentPrincipal", "Who the caller is (user or bridge point)", tags=["auth"], errors=(401,),
           response={"type": "object"})
async def me(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    token = session_token(request)
    body: dict = {"kind": principal.kind, "meeting_id": principal.meeting_id}
    if principal.user:
        body["user"] = user_json(principal.user, point_code=principal.point.code if principal.point else None)
        if token:
            body["csrf_token"] = csrf_token(request.app[SERVICES].secret, token)
    if principal.point:
        body["point"] = point_json(principal.point)
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/logout", logout)
    app.router.add_get("/api/auth/me", me)
