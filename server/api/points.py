"""The bridge-point registry (danh mục điểm cầu): list, tree, create, import, enable/disable,
device tokens for hall PCs."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from meetings.errors import Invalid
from meetings.models import PointLevel
from meetings.permissions import Action

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from ..ws.revalidate import withdrawn
from .body import field_opt_str, field_str, path_int
from .params import parse_bool, query_bool, query_enum, query_str, strict_json_body
from .schemas import LEVEL, array_of, ref
from .views import device_token_json, node_json, point_json

TAGS = ["points"]
MAX_IMPORT_BYTES = 2 * 1024 * 1024
_CHUNK = 64 * 1024
_IMPORT_TYPES = ("text/csv", "text/tab-separated-values", "application/yaml", "application/x-yaml",
                 "text/yaml", "text/x-yaml", "text/plain")


@operation("listPoints", "List bridge points", tags=TAGS, response=array_of("BridgePoint"),
           query=[("level", LEVEL, "only this level"),
                  ("q", {"type": "string", "maxLength": 200},
                   "part of the name (diacritics optional: 'dong lai' finds 'Đông Lai') or of the code"),
                  ("enabled", {"type": "boolean"}, "only enabled (true) or disabled (false) points")])
async def list_points(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_VIEW)
    found = await request.app[SERVICES].registry.list(
        level=query_enum(request, "level", PointLevel), query=query_str(request, "q"),
        enabled=query_bool(request, "enabled"))
    return web.json_response([point_json(p) for p in found])


@operation("getPointTree", "The registry as a tree: provinces → districts → communes", tags=TAGS,
           response=array_of("PointNode"), errors=(401, 403))
async def point_tree(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_VIEW)
    roots = await request.app[SERVICES].registry.tree()
    return web.json_response([node_json(n) for n in roots])


@operation("getPoint", "One bridge point", tags=TAGS, response=ref("BridgePoint"))
async def get_point(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_VIEW)
    point = await request.app[SERVICES].registry.get(path_int(request, "point_id"))
    return web.json_response(point_json(point))


@operation("createPoint", "Register one bridge point", tags=TAGS, status=201, request=ref("PointCreate"),
           response=ref("BridgePoint"), errors=(400, 401, 403, 409))
async def create_point(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    body = await strict_json_body(request)
    code = field_str(body, "code", max_len=64)
    name = field_str(body, "name", max_len=255)
    level = field_str(body, "level", max_len=32)
    parent_code = field_opt_str(body, "parent_code", max_len=64)
    point = await request.app[SERVICES].registry.create(code, name, level, parent_code)
    return web.json_response(point_json(point), status=201)


async def _read_capped(part: BodyPartReader | web.Request) -> bytes:
    """The whole part (or raw body), streamed, refusing more than ``MAX_IMPORT_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if isinstance(part, BodyPartReader):
            chunk = await part.read_chunk(_CHUNK)
        else:
            chunk = await part.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_IMPORT_BYTES, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _import_upload(request: web.Request) -> tuple[str, bytes, str, bool | None]:
    """(file name, bytes, content type, update flag from the form) of an upload."""
    if request.content_length is not None and request.content_length > MAX_IMPORT_BYTES + _CHUNK:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_IMPORT_BYTES, actual_size=request.content_length)
    if request.content_type.startswith(_IMPORT_TYPES):
        return request.query.get("filename", ""), await _read_capped(request), request.content_type, None
    if request.content_type == "application/x-www-form-urlencoded":
        raise Invalid("file: required; send multipart/form-data with a 'file' field", code="missing_field",
                      details={"field": "file"})
    if request.content_type != "multipart/form-data":
        raise Invalid("upload the file as multipart/form-data (field 'file'), or send it as text/csv "
                      "or application/yaml", code="unsupported_media_type")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError) as exc:
        raise Invalid(f"malformed multipart body: {exc}", code="malformed_multipart") from None
    found: tuple[str, bytes, str] | None = None
    update: bool | None = None
    while True:
        try:
            part = await reader.next()
        except ValueError as exc:
            raise Invalid(f"malformed multipart body: {exc}", code="malformed_multipart") from None
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise Invalid("nested multipart bodies are not supported", code="malformed_multipart")
        if part.name == "file":
            if found is not None:
                raise Invalid("send one file per import", code="invalid_field", details={"field": "file"})
            found = (part.filename or "", await _read_capped(part), part.headers.get("Content-Type", ""))
        elif part.name == "update":
            text = b""
            while len(text) <= 16 and (chunk := await part.read_chunk(64)):
                text += chunk
            update = parse_bool("update", text[:17].decode("utf-8", "replace"))
        else:
            raise Invalid(f"unknown form field {part.name!r}; send 'file' (and optionally 'update')",
                          code="invalid_field", details={"field": part.name})
    if found is None:
        raise Invalid("file: required (multipart field 'file')", code="missing_field", details={"field": "file"})
    return (*found, update)


@operation("importPoints", "Import bridge points from a CSV or YAML file (all rows or none)", tags=TAGS,
           request=ref("PointImport"), request_content_type="multipart/form-data", response=ref("ImportResult"),
           errors=(400, 401, 403, 413),
           query=[("update", {"type": "boolean"}, "update codes already registered instead of refusing them"),
                  ("filename", {"type": "string"}, "file name (format hint) when the body is the raw file")],
           description="CSV columns code, name, level (province|district|commune, or tỉnh/huyện/xã), parent "
           "(Vietnamese headers such as 'Mã định danh;Tên;Cấp;Mã cấp trên' work too), UTF-8 with or without "
           "BOM, separated by ',' ';' or tab. YAML: a list of points, each with optional nested children. "
           "At most 2 MB. When any row is wrong nothing is imported and the 400 error lists every problem "
           "in details.errors as {row, message} (see the ImportRejected schema).",
           extra={"requestBody": {"required": True, "content": {
               "multipart/form-data": {"schema": ref("PointImport")},
               "text/csv": {"schema": {"type": "string"}},
               "application/yaml": {"schema": {"type": "string"}},
           }}})
async def import_points(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    filename, data, content_type, form_update = await _import_upload(request)
    update = query_bool(request, "update")
    if form_update is not None:
        update = form_update
    result = await request.app[SERVICES].registry.import_file(filename, data, update=bool(update),
                                                              content_type=content_type)
    return web.json_response({"created": result.created, "updated": result.updated})


@operation("enablePoint", "Enable a bridge point", tags=TAGS, response=ref("BridgePoint"))
async def enable_point(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    point = await request.app[SERVICES].registry.set_enabled(path_int(request, "point_id"), True)
    return web.json_response(point_json(point))


@operation("disablePoint", "Disable a bridge point (its device tokens and links stop working)", tags=TAGS,
           response=ref("BridgePoint"))
async def disable_point(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    point = await request.app[SERVICES].registry.set_enabled(path_int(request, "point_id"), False)
    await withdrawn(request.app[SERVICES], "point_disabled")
    return web.json_response(point_json(point))


@operation("listPointTokens", "Device tokens of a bridge point (never the secrets)", tags=TAGS,
           response=array_of("DeviceToken"))
async def list_tokens(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    tokens = await request.app[SERVICES].registry.list_tokens(path_int(request, "point_id"))
    return web.json_response([device_token_json(t) for t in tokens])


@operation("issuePointToken", "Issue a device token for a point's hall PC (shown once)", tags=TAGS,
           status=201, request=ref("DeviceTokenRequest"), response=ref("IssuedDeviceToken"),
           extra={"requestBody": {"required": False,
                                  "content": {"application/json": {"schema": ref("DeviceTokenRequest")}}}})
async def issue_token(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    point_id = path_int(request, "point_id")
    label = ""
    if request.can_read_body:
        label = field_str(await strict_json_body(request), "label", required=False, max_len=255)
    registry = request.app[SERVICES].registry
    issued = await registry.issue_token(point_id, label=label)
    point = await registry.get(point_id)
    return web.json_response({"token": issued.token, "point": point_json(point)}, status=201,
                             headers={"Cache-Control": "no-store"})


@operation("revokePointTokens", "Revoke every device token of a bridge point", tags=TAGS,
           response=ref("RevokeResult"))
async def revoke_tokens(request: web.Request) -> web.Response:
    await authorize(request, Action.POINTS_MANAGE)
    revoked = await request.app[SERVICES].registry.revoke_tokens(path_int(request, "point_id"))
    await withdrawn(request.app[SERVICES], "device_tokens")
    return web.json_response({"revoked": revoked})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/points", list_points)
    app.router.add_post("/api/points", create_point)
    app.router.add_get("/api/points/tree", point_tree)
    app.router.add_post("/api/points/import", import_points)
    app.router.add_get("/api/points/{point_id}", get_point)
    app.router.add_post("/api/points/{point_id}/enable", enable_point)
    app.router.add_post("/api/points/{point_id}/disable", disable_point)
    app.router.add_get("/api/points/{point_id}/tokens", list_tokens)
    app.router.add_post("/api/points/{point_id}/tokens", issue_token)
    app.router.add_delete("/api/points/{point_id}/tokens", revoke_tokens)
