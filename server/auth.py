"""Who is calling: bearer tokens, the signed session cookie, and CSRF protection.

Bearer tokens carry their kind in a prefix: ``dcs_`` a user's login session, ``dcp_`` a
bridge-point device, ``dci_`` a per-meeting invitation link. Browsers get the session token
in a signed, HttpOnly, SameSite=Lax cookie; a write authenticated by that cookie must also
carry ``X-CSRF-Token`` (derived from the session, given to pages in a meta tag) and, when the
browser sends one, an ``Origin`` of this server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from meetings.errors import Forbidden, Unauthenticated
from meetings.models import Principal
from meetings.permissions import Action, MeetingScope, require

from .keys import SERVICES

if TYPE_CHECKING:
    from .services import Services

COOKIE = "diemcau_session"
CSRF_HEADER = "X-CSRF-Token"
_PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("diemcau.principal")
_VIA_COOKIE = web.RequestKey("diemcau.via_cookie", bool)
_TOKEN: web.RequestKey[str | None] = web.RequestKey("diemcau.token")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii").rstrip("=")


def sign_cookie(secret: bytes, token: str) -> str:
    return f"{token}.{_mac(secret, 'cookie', token)}"


def unsign_cookie(secret: bytes, value: str) -> str | None:
    token, _, mac = value.rpartition(".")
    if not token or not hmac.compare_digest(mac, _mac(secret, "cookie", token)):
        return None
    return token


def csrf_token(secret: bytes, session_token: str) -> str:
    return _mac(secret, "csrf", session_token)


async def principal_for_token(request: web.Request, token: str) -> Principal:
    services = request.app[SERVICES]
    return await resolve_token(services, token)


async def resolve_token(services: Services, token: str) -> Principal:
    """The principal behind any kind of token, or :class:`Unauthenticated`."""
    prefix = token[:4]
    if prefix == "dcs_":
        user, session_id = await services.accounts.resolve_session(token)
        point = await services.registry.get(user.point_id) if user.point_id else None
        return Principal("user", user=user, point=point, session_id=session_id)
    if prefix == "dcp_":
        point = await services.registry.resolve_token(token)
        return Principal("point", point=point)
    if prefix == "dci_":
        point, meeting_id = await services.calendar.resolve_invitation(token)
        return Principal("point", point=point, meeting_id=meeting_id)
    raise Unauthenticated("unknown or forged token", code="invalid_token")


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def optional_principal(request: web.Request) -> Principal | None:
    """The caller, or None when no credentials came; bad credentials raise."""
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]  # type: ignore[no-any-return]
    principal: Principal | None = None
    token = _bearer(request)
    via_cookie = False
    if token is None and COOKIE in request.cookies:
        token = unsign_cookie(request.app[SERVICES].secret, request.cookies[COOKIE])
        if token is None:
            raise Unauthenticated("forged session cookie", code="invalid_token")
        via_cookie = True
    if token is not None:
        principal = await principal_for_token(request, token)
    request[_PRINCIPAL] = principal
    request[_VIA_COOKIE] = via_cookie
    request[_TOKEN] = token
    if via_cookie and request.method not in SAFE_METHODS:
        check_csrf(request, token)  # type: ignore[arg-type]
    return principal


def session_token(request: web.Request) -> str | None:
    return request.get(_TOKEN)


def check_csrf(request: web.Request, token: str) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, csrf_token(request.app[SERVICES].secret, token)):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") not in own_origins(request):
        raise Forbidden("cross-origin request refused", code="csrf_failed")


def own_origins(request: web.Request) -> set[str]:
    """This server's origins: as the request reached it, and ``server.public_url`` (the
    address people use when a TLS proxy sits in front)."""
    origins = {f"{request.scheme}://{request.host}"}
    public = urlsplit(request.app[SERVICES].config.server.public_url)
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}")
    return origins


async def current_principal(request: web.Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthenticated("authentication required", code="unauthenticated")
    return principal


async def authorize(request: web.Request, action: Action, meeting_id: int | None = None) -> tuple[Principal, MeetingScope | None]:
    """The caller, after the permission table allowed ``action`` (on ``meeting_id``)."""
    principal = await current_principal(request)
    scope = None
    if meeting_id is not None:
        scope = await request.app[SERVICES].calendar.scope(meeting_id)
    require(principal, action, scope)
    return principal, scope


def cookie_secure(request: web.Request) -> bool:
    mode = request.app[SERVICES].config.auth.cookie_secure
    return mode == "always" or (mode == "auto" and request.secure)


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE, sign_cookie(request.app[SERVICES].secret, token), max_age=max_age, path="/",
        httponly=True, samesite="Lax", secure=cookie_secure(request),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
