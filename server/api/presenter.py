"""Presenter follow: the presenter's document, page and zoom; who is not following."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.errors import Invalid
from meetings.library_models import may_see
from meetings.permissions import Action
from meetings.presenter import check_rect

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import field_bool, path_int
from .params import strict_json_body

TAGS = ["presenter"]
RECT = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 4, "maxItems": 4,
        "nullable": True}
VIEW_SCHEMA = {"type": "object", "properties": {
    "presenter": {"type": "object", "nullable": True, "properties": {"label": {"type": "string"}}},
    "document_id": {"type": "integer", "nullable": True}, "version": {"type": "integer", "nullable": True},
    "page": {"type": "integer", "nullable": True}, "rect": RECT,
    "not_following": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "point_code": {"type": "string", "nullable": True}}}}}}


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise Invalid(f"{name}: expected a positive integer", code="invalid_field", details={"field": name})
    return value


async def _view_json(request: web.Request, meeting_id: int) -> dict[str, Any]:
    principal, scope = await authorize(request, Action.DOCUMENT_VIEW, meeting_id)
    services = request.app[SERVICES]
    view = await services.presenter.get(meeting_id)
    body: dict[str, Any] = {"presenter": None, "document_id": None, "version": None, "page": None,
                            "rect": None, "not_following": []}
    if view is not None:
        document = await services.library.get(view.document_id)
        if may_see(document, principal, scope):  # a restricted document is not revealed
            body.update(presenter={"label": view.presenter_label}, document_id=view.document_id,
                        version=view.version, page=view.page, rect=list(view.rect) if view.rect else None)
    if services.presenter is not None and _is_staff(principal, scope):
        body["not_following"] = [{"label": f.label, "point_code": f.point_code}
                                 for f in services.presenter.not_following(meeting_id)]
    return body


def _is_staff(principal: Any, scope: Any) -> bool:
    from meetings.permissions import allowed

    return allowed(principal, Action.PRESENT, scope)


@operation("getPresenterView", "What the presenter shows, and who is not following", tags=TAGS,
           response=VIEW_SCHEMA, description="not_following is filled for the meeting's staff only.")
async def get_view(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    return web.json_response(await _view_json(request, meeting_id))


@operation("setPresenterView", "Show a document page (and zoom) to the followers", tags=TAGS,
           request={"type": "object", "required": ["document_id", "version", "page"], "properties": {
               "document_id": {"type": "integer"}, "version": {"type": "integer"},
               "page": {"type": "integer", "minimum": 1}, "rect": RECT}},
           response=VIEW_SCHEMA, description="Event: presenter.view {document_id, version, page, rect}.")
async def set_view(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.PRESENT, meeting_id)
    body = await strict_json_body(request)
    unknown = set(body) - {"document_id", "version", "page", "rect"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})
    services = request.app[SERVICES]
    document = await services.library.get(_int(body, "document_id"))
    if document.meeting_id != meeting_id:
        raise Invalid("document_id: not a document of this meeting", code="invalid_field",
                      details={"field": "document_id"})
    version = document.version(_int(body, "version"))
    page = _int(body, "page")
    version.check_page(page)
    await services.presenter.set(meeting_id, document_id=document.id, version=version.version, page=page,
                                 rect=check_rect(body.get("rect")), presenter=principal)
    return web.json_response(await _view_json(request, meeting_id))


@operation("setFollowing", "Say whether one follows the presenter", tags=TAGS,
           request={"type": "object", "required": ["following"], "properties": {"following": {"type": "boolean"}}},
           response={"type": "object", "properties": {"following": {"type": "boolean"}}},
           description="Event: presenter.followers (a count only).")
async def set_following(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.FOLLOW, meeting_id)
    body = await strict_json_body(request)
    following = field_bool(body, "following")
    await request.app[SERVICES].presenter.set_following(meeting_id, principal, following)
    return web.json_response({"following": following})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/meetings/{meeting_id}/presenter", get_view)
    r.add_post("/api/meetings/{meeting_id}/presenter", set_view)
    r.add_post("/api/meetings/{meeting_id}/following", set_following)
