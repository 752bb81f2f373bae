"""Reading query-string parameters into typed values, with clear errors; and a strict JSON
body reader that refuses text no database can store."""

from __future__ import annotations

import enum
import json
from typing import Any, TypeVar

from aiohttp import web

from meetings.errors import Invalid

from .body import json_body

E = TypeVar("E", bound=enum.Enum)

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def query_str(request: web.Request, name: str, *, max_len: int = 200) -> str | None:
    value = request.query.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_len:
        raise Invalid(f"{name}: longer than {max_len} characters", code="invalid_query", details={"param": name})
    return value


def query_enum(request: web.Request, name: str, enum_type: type[E]) -> E | None:
    value = query_str(request, name)
    if value is None:
        return None
    try:
        return enum_type(value.strip().lower())
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum_type)
        raise Invalid(f"{name}: one of {choices}; got {value!r}", code="invalid_query",
                      details={"param": name}) from None


def parse_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise Invalid(f"{name}: expected true or false; got {value!r}", code="invalid_query", details={"param": name})


def query_bool(request: web.Request, name: str) -> bool | None:
    value = query_str(request, name)
    return None if value is None else parse_bool(name, value)


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    value = query_str(request, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"{name}: expected an integer; got {value!r}", code="invalid_query",
                      details={"param": name}) from None
    if not low <= number <= high:
        raise Invalid(f"{name}: between {low} and {high}", code="invalid_query", details={"param": name})
    return number


async def strict_json_body(request: web.Request) -> dict[str, Any]:
    """:func:`json_body`, refusing lone UTF-16 surrogates (``"\\ud800"`` is valid JSON but
    not valid Unicode text: it cannot be encoded to UTF-8 for the database)."""
    data = await json_body(request)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("body holds text that is not valid Unicode (a lone surrogate escape)",
                      code="malformed_json") from None
    return data
