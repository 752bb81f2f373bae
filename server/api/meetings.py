"""Meetings (hội nghị): schedule, list, view, edit, invite bridge points, open and close."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from meetings.calendar import UNSET, InviteSelection, MeetingDraft, MeetingPatch
from meetings.clock import isoformat
from meetings.errors import Invalid, NotFound
from meetings.models import MeetingState, PointLevel, Principal, Role
from meetings.permissions import Action

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from ..ws.revalidate import withdrawn
from .body import field_datetime, field_list_str, field_opt_str, field_str, path_int
from .params import query_enum, query_int, query_str, strict_json_body
from .schemas import STATE, array_of, ref
from .views import invitation_json, meeting_detail_json, meeting_json, point_json

TAGS = ["meetings"]
MAX_DESCRIPTION = 20000
PATCH_FIELDS = {"title", "description", "starts_at", "ends_at", "host_point_code", "chair_username",
                "secretary_username"}


def join_base(request: web.Request) -> str:
    """Where people reach this server: ``server.public_url``, else this request's origin."""
    public = request.app[SERVICES].config.server.public_url.strip()
    if public:
        return public.rstrip("/")
    return f"{request.scheme}://{request.host}"


def join_link(request: web.Request, token: str) -> str:
    return f"{join_base(request)}/join/{token}"


def _level(body: dict[str, Any]) -> PointLevel | None:
    text = field_opt_str(body, "level", max_len=32)
    if text is None:
        return None
    try:
        return PointLevel(text)
    except ValueError:
        raise Invalid(f"level: one of province, district, commune; got {text!r}", code="invalid_field",
                      details={"field": "level"}) from None


def _reject_unknown(body: dict[str, Any], known: set[str]) -> None:
    unknown = set(body) - known
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})


@operation("createMeeting", "Schedule a meeting", tags=TAGS, status=201, request=ref("MeetingCreate"),
           response=ref("MeetingDetail"), errors=(400, 401, 403),
           description="The host point is invited at once. A chair who names no chair becomes the chair; "
           "a secretary who names no secretary becomes the secretary.")
async def create_meeting(request: web.Request) -> web.Response:
    principal, _ = await authorize(request, Action.MEETING_CREATE)
    body = await strict_json_body(request)
    _reject_unknown(body, PATCH_FIELDS)
    starts_at = field_datetime(body, "starts_at")
    assert starts_at is not None
    chair = field_opt_str(body, "chair_username", max_len=64)
    secretary = field_opt_str(body, "secretary_username", max_len=64)
    user = principal.user
    if user is not None and user.role is Role.CHAIR and not chair:
        chair = user.username
    if user is not None and user.role is Role.SECRETARY and not secretary:
        secretary = user.username
    draft = MeetingDraft(
        title=field_str(body, "title", max_len=2000),
        starts_at=starts_at,
        ends_at=field_datetime(body, "ends_at", required=False),
        description=field_str(body, "description", required=False, max_len=MAX_DESCRIPTION),
        host_point_code=field_opt_str(body, "host_point_code", max_len=64),
        chair_username=chair,
        secretary_username=secretary,
    )
    meeting = await request.app[SERVICES].calendar.create(draft, created_by=user.id if user else None)
    return web.json_response(await _detail(request, meeting.id), status=201)


def _visibility(principal: Principal) -> dict[str, Any]:
    """What a principal may see in the list: everything (admin), its invitation's meeting,
    or meetings it staffs or that invite its point."""
    if principal.role is Role.ADMIN:
        return {}
    if principal.meeting_id is not None:
        return {"meeting_id": principal.meeting_id, "point_ids": {principal.point.id} if principal.point else set()}
    return {
        "point_ids": {principal.point.id} if principal.point else set(),
        "user_id": principal.user.id if principal.user else None,
    }


@operation("listMeetings", "Meetings the caller may see, latest first", tags=TAGS, response=array_of("Meeting"),
           errors=(400, 401, 403),
           query=[("state", STATE, "only meetings in this state"),
                  ("q", {"type": "string", "maxLength": 200}, "part of the title (diacritics optional)"),
                  ("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "page size"),
                  ("offset", {"type": "integer", "minimum": 0, "default": 0}, "skip this many")],
           description="Admins see every meeting; others the meetings they chair or are secretary of, "
           "and those that invite their bridge point; an invitation link sees only its meeting.")
async def list_meetings(request: web.Request) -> web.Response:
    principal, _ = await authorize(request, Action.MEETING_LIST)
    found = await request.app[SERVICES].calendar.list(
        state=query_enum(request, "state", MeetingState), query=query_str(request, "q"),
        limit=query_int(request, "limit", default=100, low=1, high=500),
        offset=query_int(request, "offset", default=0, low=0, high=10**9),
        **_visibility(principal))
    return web.json_response([meeting_json(m) for m in found])


async def _detail(request: web.Request, meeting_id: int) -> dict[str, Any]:
    services = request.app[SERVICES]
    meeting = await services.calendar.get(meeting_id)
    invited = await services.calendar.invitations(meeting_id)
    host = next((i.point for i in invited if i.point.id == meeting.host_point_id), None)
    if host is None and meeting.host_point_id is not None:
        host = await services.registry.get(meeting.host_point_id)
    chair = await services.accounts.get(meeting.chair_id) if meeting.chair_id else None
    secretary = await services.accounts.get(meeting.secretary_id) if meeting.secretary_id else None
    return meeting_detail_json(meeting, invited, host=host, chair=chair, secretary=secretary)


@operation("getMeeting", "A meeting with its chair, secretary and invited points", tags=TAGS,
           response=ref("MeetingDetail"))
async def get_meeting(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_VIEW, meeting_id)
    return web.json_response(await _detail(request, meeting_id))


def _patch_value(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        return UNSET
    if name in ("starts_at", "ends_at"):
        if name == "starts_at" and body[name] is None:
            raise Invalid("starts_at cannot be cleared", code="invalid_field", details={"field": name})
        return field_datetime(body, name, required=False)
    if name in ("title", "description"):
        limit = 2000 if name == "title" else MAX_DESCRIPTION
        return field_str(body, name, max_len=limit)
    return field_opt_str(body, name, max_len=64)


@operation("updateMeeting", "Change a meeting's title, time, description, host, chair or secretary", tags=TAGS,
           request=ref("MeetingUpdate"), response=ref("MeetingDetail"), errors=(400, 401, 403, 404, 409),
           description="Staff (admin, chair, secretary of the meeting) may edit; replacing a chair the "
           "meeting already has needs meeting.control (that chair or an admin).")
async def update_meeting(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    _, scope = await authorize(request, Action.MEETING_EDIT, meeting_id)
    body = await strict_json_body(request)
    _reject_unknown(body, PATCH_FIELDS)
    if "chair_username" in body and scope is not None and scope.meeting.chair_id is not None:
        await authorize(request, Action.MEETING_CONTROL, meeting_id)  # handing over the chair
    patch = MeetingPatch(**{name: _patch_value(body, name) for name in PATCH_FIELDS})
    await request.app[SERVICES].calendar.update(meeting_id, patch)
    return web.json_response(await _detail(request, meeting_id))


@operation("inviteBridgePoints", "Invite bridge points; gives each new one its join link (shown once)",
           tags=TAGS, request=ref("InviteRequest"), response=ref("InviteResponse"),
           errors=(400, 401, 403, 404, 409),
           description="Points already invited are listed under 'already' and keep their link. "
           "Each link is {public_url}/join/{token} and admits one point to this meeting only.")
async def invite_points(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_INVITE, meeting_id)
    body = await strict_json_body(request)
    _reject_unknown(body, {"codes", "under", "level"})
    selection = InviteSelection(
        codes=tuple(field_list_str(body, "codes", max_items=5000)),
        under=field_opt_str(body, "under", max_len=64),
        level=_level(body),
    )
    result = await request.app[SERVICES].calendar.invite(meeting_id, selection)
    return web.json_response({
        "invited": [point_json(p) for p in result.invited],
        "already": [point_json(p) for p in result.already],
        "links": {code: join_link(request, token) for code, token in result.links.items()},
    }, headers={"Cache-Control": "no-store"})


@operation("listInvitations", "The points invited to a meeting, with link expiry", tags=TAGS,
           response=array_of("Invitation"))
async def list_invitations(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_INVITE, meeting_id)
    invited = await request.app[SERVICES].calendar.invitations(meeting_id)
    return web.json_response([invitation_json(i) for i in invited])


async def _invited_point(request: web.Request, meeting_id: int, point_id: int) -> datetime:
    for invitation in await request.app[SERVICES].calendar.invitations(meeting_id):
        if invitation.point.id == point_id:
            return invitation.expires_at
    raise NotFound("that point is not invited to this meeting", code="not_invited")


@operation("renewInvitationLink", "A new join link for one invited point (the old one stops working)",
           tags=TAGS, response=ref("InvitationLink"), errors=(400, 401, 403, 404, 409))
async def renew_link(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    point_id = path_int(request, "point_id")
    await authorize(request, Action.MEETING_INVITE, meeting_id)
    services = request.app[SERVICES]
    token = await services.calendar.renew_link(meeting_id, point_id)
    await withdrawn(services, "invitation_link")
    point = await services.registry.get(point_id)
    expires_at = await _invited_point(request, meeting_id, point_id)
    return web.json_response({"code": point.code, "link": join_link(request, token),
                              "expires_at": isoformat(expires_at)}, headers={"Cache-Control": "no-store"})


@operation("uninviteBridgePoint", "Withdraw a point's invitation (its link stops working)", tags=TAGS,
           status=204, errors=(400, 401, 403, 404, 409))
async def uninvite(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    point_id = path_int(request, "point_id")
    await authorize(request, Action.MEETING_INVITE, meeting_id)
    await request.app[SERVICES].calendar.uninvite(meeting_id, point_id)
    return web.Response(status=204)


async def _set_state(request: web.Request, state: MeetingState) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_CONTROL, meeting_id)
    await request.app[SERVICES].calendar.set_state(meeting_id, state)
    return web.json_response(await _detail(request, meeting_id))


@operation("openMeeting", "Open the meeting (bridge points may join)", tags=TAGS, response=ref("MeetingDetail"),
           errors=(400, 401, 403, 404, 409))
async def open_meeting(request: web.Request) -> web.Response:
    return await _set_state(request, MeetingState.OPEN)


@operation("closeMeeting", "Close the meeting (join links stop working)", tags=TAGS,
           response=ref("MeetingDetail"), errors=(400, 401, 403, 404, 409))
async def close_meeting(request: web.Request) -> web.Response:
    return await _set_state(request, MeetingState.CLOSED)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/meetings", list_meetings)
    app.router.add_post("/api/meetings", create_meeting)
    app.router.add_get("/api/meetings/{meeting_id}", get_meeting)
    app.router.add_patch("/api/meetings/{meeting_id}", update_meeting)
    app.router.add_get("/api/meetings/{meeting_id}/invitations", list_invitations)
    app.router.add_post("/api/meetings/{meeting_id}/invitations", invite_points)
    app.router.add_post("/api/meetings/{meeting_id}/invitations/{point_id}/link", renew_link)
    app.router.add_delete("/api/meetings/{meeting_id}/invitations/{point_id}", uninvite)
    app.router.add_post("/api/meetings/{meeting_id}/open", open_meeting)
    app.router.add_post("/api/meetings/{meeting_id}/close", close_meeting)
