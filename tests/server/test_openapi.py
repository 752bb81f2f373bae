"""The OpenAPI document matches the router, has unique operationIds, and is valid OpenAPI 3."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.config import Config
from server.openapi import DOCUMENTED_PREFIXES, build_spec, documented_routes, operation_of
from tests.conftest import Api

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "CONTRACT.md"
# The operationIds this issue owns (CONTRACT.md); the others arrive with their features.
THIS_ISSUE = {"login", "createMeeting", "getMeeting", "listMeetings", "inviteBridgePoints"}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


async def fetch_spec(api: Api) -> dict[str, Any]:
    resp = await api.client.get("/api/openapi.json")
    assert resp.status == 200
    return await resp.json()  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


async def test_every_route_is_documented_and_every_operation_routed(api: Api) -> None:
    spec = await fetch_spec(api)
    app = api.client.app
    routed = {(m.lower(), p) for m, p, _ in documented_routes(app)}
    for method, path, handler in documented_routes(app):
        assert operation_of(handler) is not None, f"{method} {path} lacks @operation"
    in_spec = {(method, path) for path, method, _ in operations(spec)}
    assert in_spec == routed
    # and nothing under the documented prefixes escaped documented_routes
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith(DOCUMENTED_PREFIXES) and route.method not in ("HEAD", "*") \
                and path != "/api/openapi.json":
            assert (route.method.lower(), re.sub(r"{([^}:]+)(:[^}]*)?}", r"{\1}", path)) in in_spec


async def test_operation_ids_unique_camel_case_and_contract(api: Api) -> None:
    spec = await fetch_spec(api)
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(CAMEL.match(i) for i in ids), [i for i in ids if not CAMEL.match(i)]
    assert THIS_ISSUE <= set(ids)


def test_contract_names_this_issues_operations() -> None:
    if not CONTRACT.exists():
        pytest.skip("CONTRACT.md not next to the checkout")
    text = CONTRACT.read_text(encoding="utf-8")
    for op_id in THIS_ISSUE:
        assert f"`{op_id}`" in text


def test_contract_routes_of_this_issue() -> None:
    spec = build_spec(create_app(Config()), {})  # schemas are not needed to list paths
    by_id = {op["operationId"]: (method, path) for path, method, op in operations(spec)}
    assert by_id["login"] == ("post", "/api/auth/login")
    assert by_id["createMeeting"] == ("post", "/api/meetings")
    assert by_id["listMeetings"] == ("get", "/api/meetings")
    assert by_id["getMeeting"] == ("get", "/api/meetings/{meeting_id}")
    assert by_id["inviteBridgePoints"] == ("post", "/api/meetings/{meeting_id}/invitations")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


SCHEMA_TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def _check_schema(schema: Any, where: str, problems: list[str]) -> None:
    if not isinstance(schema, dict):
        problems.append(f"{where}: schema is not an object")
        return
    if "$ref" in schema:
        return
    if "type" in schema and schema["type"] not in SCHEMA_TYPES:
        problems.append(f"{where}: unknown type {schema['type']!r}")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{where}: array without items")
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(key, [])):
            _check_schema(sub, f"{where}.{key}[{i}]", problems)
    for name, sub in schema.get("properties", {}).items():
        _check_schema(sub, f"{where}.{name}", problems)
    for name in schema.get("required", []):
        if "properties" in schema and name not in schema["properties"]:
            problems.append(f"{where}: required {name!r} is not a property")
    if isinstance(schema.get("items"), dict):
        _check_schema(schema["items"], f"{where}[]", problems)
    if isinstance(schema.get("additionalProperties"), dict):
        _check_schema(schema["additionalProperties"], f"{where}{{}}", problems)


async def test_structurally_valid_openapi3(api: Api) -> None:
    """A hand-written structural check (independent of any validator library)."""
    spec = await fetch_spec(api)
    problems: list[str] = []
    assert spec["openapi"].startswith("3.")
    assert {"title", "version"} <= set(spec["info"])
    schemas = spec["components"]["schemas"]
    for ref in set(_refs(spec)):
        assert ref.startswith("#/components/schemas/"), ref
        if ref.rsplit("/", 1)[1] not in schemas:
            problems.append(f"dangling $ref {ref}")
    for name, schema in schemas.items():
        _check_schema(schema, f"components.schemas.{name}", problems)
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        assert path.startswith("/")
        templated = set(re.findall(r"{([^}]+)}", path))
        params = op.get("parameters", [])
        in_path = {p["name"] for p in params if p["in"] == "path"}
        if templated != in_path:
            problems.append(f"{where}: path parameters {sorted(in_path)} vs template {sorted(templated)}")
        for p in params:
            if p["in"] not in {"path", "query", "header", "cookie"} or "schema" not in p:
                problems.append(f"{where}: bad parameter {p}")
            if p["in"] == "path" and p.get("required") is not True:
                problems.append(f"{where}: path parameter {p['name']} must be required")
        if len({(p["name"], p["in"]) for p in params}) != len(params):
            problems.append(f"{where}: duplicate parameters")
        if not op.get("responses"):
            problems.append(f"{where}: no responses")
        for status, response in op["responses"].items():
            if not re.fullmatch(r"[1-5]\d\d|default", status) or "description" not in response:
                problems.append(f"{where}: bad response {status}")
            for media in response.get("content", {}).values():
                _check_schema(media.get("schema"), f"{where} {status}", problems)
        body = op.get("requestBody")
        if body is not None:
            if not body.get("content"):
                problems.append(f"{where}: requestBody without content")
            for media in body.get("content", {}).values():
                _check_schema(media.get("schema"), f"{where} body", problems)
        if method in ("get", "delete") and body is not None:
            problems.append(f"{where}: body on {method}")
        for requirement in op.get("security", spec.get("security", [])):
            for scheme in requirement:
                if scheme not in spec["components"]["securitySchemes"]:
                    problems.append(f"{where}: unknown security scheme {scheme}")
    assert problems == []


async def test_openapi_spec_validator_agrees(api: Api) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(await fetch_spec(api))


async def test_public_operations_are_marked(api: Api) -> None:
    spec = await fetch_spec(api)
    public = {op["operationId"] for _, _, op in operations(spec) if op.get("security") == []}
    assert {"login", "getHealth", "getMetrics"} <= public
    assert not public & {"createMeeting", "listMeetings", "getMeeting", "inviteBridgePoints", "createUser",
                         "importPoints"}


JUNK_VALUES: list[Any] = [None, 0, -1, 2**70, 1.5, True, "", "x" * 3000, "\u0000\ud7ff", "\ud800", [], [1, "a"], {}, {"a": [None]}]
OWN_PREFIXES = ("/api/users", "/api/points", "/api/meetings")


def _fill(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"{([^}]+)}", lambda m: str(ids.get(m.group(1), 1)), path)


async def test_no_operation_answers_500_to_junk(api: Api) -> None:
    """Every documented body property, given every wrong type, gets a 4xx — never a 500.
    (A cheap, deterministic cousin of a schemathesis run, over this issue's routes.)"""
    admin = api.bearer(await api.user("quantri", "admin"))
    api.client.session.cookie_jar.clear()
    await api.services.registry.import_file("p.csv", "code,name,level,parent\n08,UBND tỉnh Tuyên Quang,tỉnh,\n".encode())
    resp = await api.client.post("/api/meetings", json={"title": "Họp", "starts_at": "2026-12-01T08:00:00+07:00",
                                                        "host_point_code": "08"}, headers=admin)
    meeting = await resp.json()
    ids = {"meeting_id": meeting["id"], "point_id": meeting["host_point_id"], "user_id": 1}
    spec = await fetch_spec(api)
    schemas = spec["components"]["schemas"]
    failures: list[str] = []
    for path, method, op in operations(spec):
        if not path.startswith(OWN_PREFIXES) or method == "get":
            continue
        url = _fill(path, ids)
        content = op.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        bodies: list[Any] = [b"{", b"[]", b'"text"', b"null"]
        if schema is not None:
            target = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
            for prop in target.get("properties", {}):
                bodies.extend({prop: value} for value in JUNK_VALUES)
        for body in bodies:
            if isinstance(body, bytes):
                resp = await api.client.request(method, url, data=body,
                                                headers={**admin, "Content-Type": "application/json"})
            else:
                resp = await api.client.request(method, url, json=body, headers=admin)
            if resp.status >= 500:
                failures.append(f"{method.upper()} {url} {body!r:.80}: {resp.status} {(await resp.text())[:120]}")
    assert not failures, "\n".join(failures)
