"""Reading untrusted JSON request bodies into typed values, with clear errors."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from meetings.errors import Invalid

MAX_JSON_BYTES = 1024 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise Invalid(f"request body larger than {MAX_JSON_BYTES} bytes", code="too_large")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise Invalid(f"request body larger than {MAX_JSON_BYTES} bytes", code="too_large")
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"body is not valid JSON: {exc}", code="malformed_json") from None
    if _has_surrogate(data):
        raise Invalid("body holds text that is not valid Unicode (a lone surrogate)", code="malformed_json")
    if not isinstance(data, dict):
        raise Invalid("body must be a JSON object", code="malformed_json")
    return data


def _has_surrogate(value: Any) -> bool:
    """JSON may escape lone surrogates (\\ud800) that no database or encoder accepts."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def field_str(body: dict[str, Any], name: str, *, required: bool = True, max_len: int = 10000,
              default: str = "") -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"{name}: required", code="missing_field", details={"field": name})
        return default
    if not isinstance(value, str):
        raise Invalid(f"{name}: expected a string", code="invalid_field", details={"field": name})
    if len(value) > max_len:
        raise Invalid(f"{name}: longer than {max_len} characters", code="invalid_field", details={"field": name})
    return value


def field_opt_str(body: dict[str, Any], name: str, *, max_len: int = 10000) -> str | None:
    if body.get(name) is None:
        return None
    return field_str(body, name, max_len=max_len)


def field_bool(body: dict[str, Any], name: str, *, default: bool | None = None) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise Invalid(f"{name}: expected true or false", code="invalid_field", details={"field": name})
    return value


def field_list_str(body: dict[str, Any], name: str, *, max_items: int = 10000) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{name}: expected a list of strings", code="invalid_field", details={"field": name})
    if len(value) > max_items:
        raise Invalid(f"{name}: more than {max_items} items", code="invalid_field", details={"field": name})
    return value


def field_datetime(body: dict[str, Any], name: str, *, required: bool = True) -> datetime | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"{name}: required", code="missing_field", details={"field": name})
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name}: expected an ISO 8601 date-time string", code="invalid_field", details={"field": name})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name}: {value!r} is not an ISO 8601 date-time", code="invalid_field",
                      details={"field": name}) from None
    if parsed.tzinfo is None:
        raise Invalid(f"{name}: give a timezone, e.g. {value}+07:00", code="invalid_field", details={"field": name})
    return parsed


def path_int(request: web.Request, name: str) -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError):
        raise Invalid(f"{name}: expected an integer", code="invalid_path") from None
    if not 0 < value < 2**31:  # SQL INTEGER on PostgreSQL
        raise Invalid(f"{name}: out of range", code="invalid_path")
    return value
