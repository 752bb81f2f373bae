"""Mapping domain errors to HTTP: ``{"error": {"code", "message"}}`` with a fitting status."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from meetings.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
)

log = logging.getLogger(__name__)

STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
}


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 400


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def json_error(status: int, code: str, message: str, details: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message, details), status=status, headers=headers,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(exc.retry_after_s + 0.999)))
        if isinstance(exc, Unauthenticated) and request.path.startswith("/api/"):
            headers["WWW-Authenticate"] = 'Bearer realm="diemcau"'
        return json_error(status_of(exc), exc.code, exc.message, exc.details, headers)
    except web.HTTPException as exc:
        if exc.status >= 400 and _wants_json(request) and exc.content_type != "application/json":
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
            return json_error(exc.status, code, exc.reason, headers={
                k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}})
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal", "internal server error")
