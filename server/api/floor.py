"""The floor (đăng ký phát biểu) and the chair's controls: queue, grant, revoke, mute,
remove a point, lock the meeting. Domain logic in ``meetings/floor.py``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.clock import isoformat
from meetings.errors import Invalid
from meetings.floor import FloorRequest, FloorState
from meetings.permissions import Action, allowed

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import field_bool, field_str, path_int
from .params import strict_json_body
from .schemas import ref

TAGS = ["floor"]
MAX_CODE = 64


def request_json(r: FloorRequest) -> dict[str, Any]:
    return {"id": r.id, "point_code": r.point_code, "label": r.label, "topic": r.topic,
            "requested_at": isoformat(r.requested_at)}


def floor_json(state: FloorState) -> dict[str, Any]:
    s = state.speaker
    return {
        "speaker": None if s is None else {"request_id": s.request_id, "point_code": s.point_code, "label": s.label,
                                           "since": isoformat(s.since), "topic": s.topic},
        "queue": [request_json(r) for r in state.queue],
        "main_screen": {"point_code": state.main_screen.point_code, "label": state.main_screen.label,
                        "reason": state.main_screen.reason},
        "locked": state.locked,
        "muted": state.muted,
        "totals": [{"point_code": t.point_code, "label": t.label, "seconds": t.seconds} for t in state.totals],
    }


def reject_unknown(body: dict[str, Any], known: set[str]) -> None:
    unknown = set(body) - known
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})


async def optional_body(request: web.Request, known: set[str]) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await strict_json_body(request)
    reject_unknown(body, known)
    return body


def point_code_param(request: web.Request) -> str:
    code = request.match_info.get("point_code", "")
    if not code or len(code) > MAX_CODE:
        raise Invalid("point_code: 1 to 64 characters", code="invalid_path")
    return code


@operation("getFloor", "The floor: speaker, queue, main screen, lock, muted points, speaking totals",
           tags=TAGS, response=ref("Floor"))
async def get_floor(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_VIEW, meeting_id)
    return web.json_response(floor_json(await request.app[SERVICES].floor.state(meeting_id)))


@operation("requestFloor", "Ask for the floor for the caller's own point (optional topic)", tags=TAGS,
           status=201, request=ref("FloorRequestCreate"), response=ref("FloorRequest"),
           errors=(400, 401, 403, 404, 409),
           description="A bridge point's device or link, or a user attending from an invited point. "
           "One waiting request per point (409 already_requested).")
async def request_floor(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.FLOOR_REQUEST, meeting_id)
    body = await optional_body(request, {"topic"})
    topic = field_str(body, "topic", required=False, max_len=2000)
    made = await request.app[SERVICES].floor.request(meeting_id, principal, topic)
    return web.json_response(request_json(made), status=201)


@operation("withdrawFloorRequest", "Withdraw a waiting floor request (the requester or the chair)",
           tags=TAGS, status=204, errors=(400, 401, 403, 404))
async def withdraw_request(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    request_id = path_int(request, "request_id")
    principal, scope = await authorize(request, Action.FLOOR_REQUEST, meeting_id)
    is_chair = allowed(principal, Action.FLOOR_CONTROL, scope)
    await request.app[SERVICES].floor.withdraw(meeting_id, principal, request_id, is_chair=is_chair)
    return web.Response(status=204)


@operation("grantFloor", "Give the floor to a request or a point (chair): it becomes the main screen, unmuted",
           tags=TAGS, request=ref("FloorGrant"), response=ref("Floor"), errors=(400, 401, 403, 404, 409))
async def grant_floor(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.FLOOR_CONTROL, meeting_id)
    body = await optional_body(request, {"request_id", "point_code"})
    request_id = body.get("request_id")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)
                                   or not 0 < request_id < 2**31):
        raise Invalid("request_id: a positive integer", code="invalid_field", details={"field": "request_id"})
    point_code = body.get("point_code")
    if point_code is not None and (not isinstance(point_code, str) or not 0 < len(point_code) <= MAX_CODE):
        raise Invalid("point_code: 1 to 64 characters", code="invalid_field", details={"field": "point_code"})
    state = await request.app[SERVICES].floor.grant(meeting_id, principal, request_id=request_id,
                                                    point_code=point_code)
    return web.json_response(floor_json(state))


@operation("revokeFloor", "End the current speaker's turn (chair); the main screen returns to the host",
           tags=TAGS, response=ref("Floor"), errors=(400, 401, 403, 404, 409))
async def revoke_floor(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.FLOOR_CONTROL, meeting_id)
    return web.json_response(floor_json(await request.app[SERVICES].floor.revoke(meeting_id, principal)))


@operation("grantNextFloor", "Give the floor to the oldest waiting request (chair)", tags=TAGS,
           response=ref("Floor"), errors=(400, 401, 403, 404, 409))
async def next_floor(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.FLOOR_CONTROL, meeting_id)
    return web.json_response(floor_json(await request.app[SERVICES].floor.grant_next(meeting_id, principal)))


@operation("setPointMuted", "Mute or unmute a point (chair)", tags=TAGS, request=ref("MutedFlag"),
           response=ref("Floor"), errors=(400, 401, 403, 404))
async def set_muted(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    code = point_code_param(request)
    principal, _ = await authorize(request, Action.FLOOR_CONTROL, meeting_id)
    body = await optional_body(request, {"muted"})
    floor = request.app[SERVICES].floor
    await floor.set_muted(meeting_id, principal, code, field_bool(body, "muted"))
    return web.json_response(floor_json(await floor.state(meeting_id)))


@operation("removePoint", "Remove a point from the meeting (chair): muted, its requests and turn ended, "
           "no more floor requests or ballots", tags=TAGS, response=ref("Floor"), errors=(400, 401, 403, 404))
async def remove_point(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    code = point_code_param(request)
    principal, _ = await authorize(request, Action.FLOOR_CONTROL, meeting_id)
    return web.json_response(floor_json(await request.app[SERVICES].floor.remove(meeting_id, principal, code)))


@operation("setMeetingLocked", "Lock or unlock the meeting (chair)", tags=TAGS, request=ref("LockedFlag"),
           response=ref("Floor"), errors=(400, 401, 403, 404))
async def set_locked(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.FLOOR_CONTROL, meeting_id)
    body = await optional_body(request, {"locked"})
    state = await request.app[SERVICES].floor.set_locked(meeting_id, principal, field_bool(body, "locked"))
    return web.json_response(floor_json(state))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/meetings/{meeting_id}/floor", get_floor)
    app.router.add_post("/api/meetings/{meeting_id}/floor/requests", request_floor)
    app.router.add_delete("/api/meetings/{meeting_id}/floor/requests/{request_id}", withdraw_request)
    app.router.add_post("/api/meetings/{meeting_id}/floor/grant", grant_floor)
    app.router.add_post("/api/meetings/{meeting_id}/floor/revoke", revoke_floor)
    app.router.add_post("/api/meetings/{meeting_id}/floor/next", next_floor)
    app.router.add_post("/api/meetings/{meeting_id}/points/{point_code}/mute", set_muted)
    app.router.add_post("/api/meetings/{meeting_id}/points/{point_code}/remove", remove_point)
    app.router.add_post("/api/meetings/{meeting_id}/lock", set_locked)
