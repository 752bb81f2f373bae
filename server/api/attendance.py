"""Attendance (điểm danh) per invited point, and roll calls. Domain in ``meetings/attendance.py``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.attendance import AttendanceSheet, RollCall, Status, parse_status
from meetings.clock import isoformat
from meetings.errors import Forbidden, Invalid
from meetings.permissions import Action, allowed

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import field_str, path_int
from .floor import optional_body, point_code_param
from .schemas import ref

TAGS = ["attendance"]


def roll_call_json(roll: RollCall | None) -> dict[str, Any] | None:
    if roll is None:
        return None
    return {"id": roll.id, "started_at": isoformat(roll.started_at), "confirmed": list(roll.confirmed),
            "closed": roll.closed}


def sheet_json(sheet: AttendanceSheet) -> dict[str, Any]:
    return {
        "points": [{
            "point_code": p.point_code, "name": p.name, "level": p.level, "status": p.status.value,
            "headcount": p.headcount, "reason": p.reason, "first_joined_at": isoformat(p.first_joined_at),
            "last_left_at": isoformat(p.last_left_at), "online_seconds": p.online_seconds,
        } for p in sheet.points],
        "roll_call": roll_call_json(sheet.roll_call),
    }


def _headcount(body: dict[str, Any]) -> int | None:
    value = body.get("headcount")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid("headcount: an integer", code="invalid_headcount", details={"field": "headcount"})
    return value


@operation("listAttendance", "Attendance per invited point (live presence + what was reported) and the roll call",
           tags=TAGS, response=ref("AttendanceSheet"))
async def list_attendance(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_VIEW, meeting_id)
    return web.json_response(sheet_json(await request.app[SERVICES].attendance.sheet(meeting_id)))


@operation("setAttendance", "Mark an invited point online / in the hall (with headcount) / absent (with reason)",
           tags=TAGS, request=ref("AttendanceSet"), response=ref("AttendanceSheet"),
           errors=(400, 401, 403, 404),
           description="Staff (admin, chair, secretary) for any invited point; a point (or a delegate "
           "attending from it) for itself, with status online or in_hall and a headcount.")
async def set_attendance(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    code = point_code_param(request)
    principal, scope = await authorize(request, Action.MEETING_VIEW, meeting_id)
    body = await optional_body(request, {"status", "headcount", "reason"})
    status = parse_status(field_str(body, "status", max_len=16))
    if not allowed(principal, Action.ATTENDANCE_SET, scope):
        own = principal.point is not None and principal.point.code == code
        if not (own and allowed(principal, Action.ATTENDANCE_SELF, scope)):
            raise Forbidden("not allowed: attendance.set", code="forbidden", details={"action": "attendance.set"})
        if status is Status.ABSENT:
            raise Forbidden("a point reports itself present, not absent", code="forbidden",
                            details={"action": "attendance.set"})
    attendance = request.app[SERVICES].attendance
    await attendance.set(meeting_id, principal, code, status, headcount=_headcount(body),
                         reason=field_str(body, "reason", required=False, max_len=2000))
    return web.json_response(sheet_json(await attendance.sheet(meeting_id)))


@operation("startRollCall", "Start a roll call (chair); points confirm", tags=TAGS, status=201,
           response=ref("RollCall"), errors=(400, 401, 403, 404, 409))
async def start_roll_call(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.ROLL_CALL, meeting_id)
    roll = await request.app[SERVICES].attendance.start_roll_call(meeting_id, principal)
    return web.json_response(roll_call_json(roll), status=201)


@operation("confirmRollCall", "Answer the running roll call for the caller's point (optional headcount)",
           tags=TAGS, request=ref("RollCallConfirm"), response=ref("RollCall"), errors=(400, 401, 403, 404, 409))
async def confirm_roll_call(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.ATTENDANCE_SELF, meeting_id)
    body = await optional_body(request, {"headcount"})
    roll = await request.app[SERVICES].attendance.confirm_roll_call(meeting_id, principal, _headcount(body))
    return web.json_response(roll_call_json(roll))


@operation("closeRollCall", "Close the running roll call (chair)", tags=TAGS, response=ref("RollCall"),
           errors=(400, 401, 403, 404, 409))
async def close_roll_call(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.ROLL_CALL, meeting_id)
    roll = await request.app[SERVICES].attendance.close_roll_call(meeting_id, principal)
    return web.json_response(roll_call_json(roll))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/meetings/{meeting_id}/attendance", list_attendance)
    app.router.add_put("/api/meetings/{meeting_id}/attendance/{point_code}", set_attendance)
    app.router.add_post("/api/meetings/{meeting_id}/roll-call", start_roll_call)
    app.router.add_post("/api/meetings/{meeting_id}/roll-call/confirm", confirm_roll_call)
    app.router.add_post("/api/meetings/{meeting_id}/roll-call/close", close_roll_call)
