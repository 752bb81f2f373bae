"""Content sharing (chia sẻ nội dung): start/stop a screen share, the chair's layout.
Domain logic in ``meetings/share.py`` (owned by the floor, ``FloorControl.share``); every node's
media follows its ``share.changed`` events, WebSocket clients get them as ``event``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.errors import Invalid
from meetings.permissions import Action, allowed
from meetings.share import LAYOUTS, MAX_SESSION, Layout, layout_of

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import path_int
from .params import strict_json_body
from .schemas import SCHEMAS, ref

TAGS = ["media"]

SCHEMAS.update({
    "ShareStart": {"type": "object", "additionalProperties": False, "properties": {
        "session": {"type": "string", "minLength": 1, "maxLength": MAX_SESSION,
                    "description": "the caller's WebSocket session key (welcome.session) whose "
                                   "`screen` m-line carries the content"},
        "layout": {"type": "string", "enum": list(LAYOUTS)}}},
    "ShareLayoutSet": {"type": "object", "required": ["layout"], "additionalProperties": False,
                       "properties": {"layout": {"type": "string", "enum": list(LAYOUTS)}}},
    "Share": {"type": "object", "required": ["active", "layout"], "properties": {
        "active": {"type": "boolean"}, "session": {"type": "string", "nullable": True},
        "point_code": {"type": "string", "nullable": True}, "label": {"type": "string"},
        "layout": {"type": "string", "enum": list(LAYOUTS)}, "via_floor": {"type": "boolean"},
        "started_at": {"type": "string", "format": "date-time", "nullable": True}}},
})


async def _body(request: web.Request, known: set[str]) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await strict_json_body(request)
    unknown = set(body) - known
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})
    return body


def _session(body: dict[str, Any]) -> str | None:
    value = body.get("session")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_SESSION:
        raise Invalid(f"session: 1 to {MAX_SESSION} characters", code="invalid_field",
                      details={"field": "session"})
    return value


@operation("getShare", "The meeting's content share (active or not) and the chair's layout",
           tags=TAGS, response=ref("Share"))
async def get_share(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_VIEW, meeting_id)
    return web.json_response(request.app[SERVICES].floor.share.state_json(meeting_id))


@operation("startShare", "Share the caller's screen (staff, or the point holding the floor)",
           tags=TAGS, status=201, request=ref("ShareStart"), response=ref("Share"),
           errors=(400, 401, 403, 404, 409),
           description="The caller's session publishes the content on its `screen` m-line; it "
           "shows on every main screen (layout `main`, main screen reason `share`) or in the "
           "`content` slots beside the speaker (`beside`). 403 `not_floor_holder` for a "
           "participant whose point does not hold the floor; 409 `share_in_progress` while "
           "someone else shares. Everyone gets the `share.changed` event.")
async def start_share(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, scope = await authorize(request, Action.MEDIA_SHARE, meeting_id)
    body = await _body(request, {"session", "layout"})
    layout: Layout | None = layout_of(body["layout"]) if body.get("layout") is not None else None
    staff = allowed(principal, Action.MEDIA_CONSOLE, scope)
    share = await request.app[SERVICES].floor.share.start(
        meeting_id, principal, staff=staff, session=_session(body), layout=layout)
    return web.json_response(share.as_json(), status=201)


@operation("stopShare", "Stop the content share (the sharer or the meeting's staff); the main "
           "screen returns to what the floor holds", tags=TAGS, status=204,
           errors=(400, 401, 403, 404))
async def stop_share(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, scope = await authorize(request, Action.MEDIA_SHARE, meeting_id)
    staff = allowed(principal, Action.MEDIA_CONSOLE, scope)
    await request.app[SERVICES].floor.share.stop(meeting_id, principal, staff=staff)
    return web.Response(status=204)


@operation("setShareLayout", "Where shared content shows (chair): `main` or `beside` the speaker",
           tags=TAGS, request=ref("ShareLayoutSet"), response=ref("Share"),
           errors=(400, 401, 403, 404, 409))
async def set_share_layout(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.MEDIA_MAIN_SCREEN, meeting_id)
    body = await _body(request, {"layout"})
    if "layout" not in body:
        raise Invalid("layout: required", code="missing_field", details={"field": "layout"})
    state = await request.app[SERVICES].floor.share.set_layout(meeting_id, principal,
                                                               layout_of(body["layout"]))
    return web.json_response(state)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/meetings/{meeting_id}/share", get_share)
    app.router.add_post("/api/meetings/{meeting_id}/share", start_share)
    app.router.add_delete("/api/meetings/{meeting_id}/share", stop_share)
    app.router.add_put("/api/meetings/{meeting_id}/share/layout", set_share_layout)
