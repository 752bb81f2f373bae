"""The OpenAPI 3 document, built from the router so it cannot drift from it.

Each REST handler is decorated with :func:`operation`; :func:`build_spec` walks the app's
routes. A test checks that every route under ``/api``, ``/healthz`` and ``/metrics`` has an
operation and that operationIds are unique.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from . import __version__

F = TypeVar("F", bound=Callable[..., Any])
DOCUMENTED_PREFIXES = ("/api/", "/healthz", "/metrics")
ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    tags: tuple[str, ...] = ()
    request: dict[str, Any] | None = None  # JSON schema of the body
    request_content_type: str = "application/json"
    response: dict[str, Any] | None = None  # JSON schema of the 2xx body
    response_content_type: str = "application/json"
    status: int = 200
    auth: bool = True
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()  # (name, schema, description)
    errors: tuple[int, ...] = (400, 401, 403, 404)
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def operation(operation_id: str, summary: str, **kwargs: Any) -> Callable[[F], F]:
    """Attach OpenAPI metadata to a handler."""
    for key in ("tags", "errors"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    if "query" in kwargs:
        kwargs["query"] = tuple(tuple(q) for q in kwargs["query"])
    op = Operation(operation_id, summary, **kwargs)

    def decorate(handler: F) -> F:
        handler.__openapi__ = op  # type: ignore[attr-defined]
        return handler

    return decorate


def operation_of(handler: Any) -> Operation | None:
    return getattr(handler, "__openapi__", None)


_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _path_template(path: str) -> tuple[str, list[str]]:
    names = _PARAM.findall(path)
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), names


def documented_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path template, handler) of every route that must be documented."""
    out = []
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith(DOCUMENTED_PREFIXES):
            continue
        if path.startswith("/api/openapi.json"):
            continue
        out.append((route.method, _path_template(path)[0], route.handler))
    return out


def build_spec(app: web.Application, schemas: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in documented_routes(app):
        op = operation_of(handler)
        if op is None:
            raise RuntimeError(f"{method} {path} has no @operation")
        _, names = _path_template(path)
        item: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": list(op.tags)}
        if op.description:
            item["description"] = op.description
        params = [
            {"name": n, "in": "path", "required": True,
             "schema": {"type": "integer"} if n.endswith("id") else {"type": "string"}}
            for n in names
        ]
        params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in op.query]
        if params:
            item["parameters"] = params
        if op.request is not None:
            item["requestBody"] = {"required": True, "content": {op.request_content_type: {"schema": op.request}}}
        ok: dict[str, Any] = {"description": "OK"}
        if op.response is not None:
            ok["content"] = {op.response_content_type: {"schema": op.response}}
        responses: dict[str, Any] = {str(op.status): ok}
        for status in op.errors:
            if status == 401 and not op.auth:
                continue
            responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error"),
                                      "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        item["responses"] = responses
        if not op.auth:
            item["security"] = []
        item.update(op.extra)
        paths.setdefault(path, {})[method.lower()] = item
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "diemcau API",
            "version": __version__,
            "description": "REST API of diemcau: every user action is a command here; "
            "the WebSocket /ws carries live events and WebRTC signalling (docs/protocol.md).",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": _ERROR, **schemas},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "diemcau_session"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }


_ERROR_TEXT = {400: "Invalid request", 401: "Not authenticated", 403: "Not allowed",
               404: "Not found", 409: "Conflict", 413: "Too large", 429: "Too many requests"}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
