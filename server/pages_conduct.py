"""Pages for conducting a meeting (điều hành cuộc họp): the chair's console, a bridge point's
room (its controls: raise hand, roll call, votes) and the admins' audit log.

Like every page they only read: the console and the room are shells filled by their ES
modules (``web/static/js/console.js``, ``controls.js``) from the conduct REST API, kept live
by the meeting's WebSocket events. Access follows the permission table:

- ``/meetings/{id}/console`` — the meeting's staff (admin, chair, secretary); the chair (and
  admins) get the controls, the secretary a read-mostly console (attendance, minutes).
- ``/meetings/{id}/room`` — a logged-in participant attending from an invited bridge point
  (a delegate, or any user whose account names a point).
- ``/join/{token}/room`` — a hall PC admitted by its invitation link; its ES module
  authenticates REST with ``Authorization: Bearer`` and the WebSocket with ``hello.token``.
- ``/audit`` — admins only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web

from meetings.errors import Forbidden, NotFound, Unauthenticated
from meetings.models import Invitation, Meeting, Principal
from meetings.permissions import Action, MeetingScope, allowed, require

from .auth import cookie_secure, sign_cookie, unsign_cookie
from .keys import SERVICES
from .pages import ENV_KEYS, _meeting_id, _principal_or_none, error_page, page, render, require_user

ROOM_COOKIE = "diemcau_room"  # a link-admitted hall PC's invitation token, for its room's address only


@dataclass(frozen=True)
class ConductAccess:
    """What the conduct pages offer ``principal`` in one meeting."""

    console: bool  # may open the console (staff)
    control: bool  # may run the floor, votes, roll call, lock (chair, admin)
    edit: bool  # may edit attendance and write the minutes (staff)
    room: bool  # attends from an invited bridge point: raise hand, roll call, vote


def conduct_access(principal: Principal | None, scope: MeetingScope) -> ConductAccess:
    point = principal.point if principal else None
    room = (point is not None and point.id in scope.invited_point_ids
            and allowed(principal, Action.FLOOR_REQUEST, scope))
    return ConductAccess(console=allowed(principal, Action.MEETING_EDIT, scope),
                         control=allowed(principal, Action.FLOOR_CONTROL, scope),
                         edit=allowed(principal, Action.ATTENDANCE_SET, scope), room=room)


def scope_of(meeting: Meeting, invitations: list[Invitation]) -> MeetingScope:
    return MeetingScope(meeting, frozenset(inv.point.id for inv in invitations))


def meeting_conduct_links(principal: Principal | None, meeting: Meeting, groups: list[Any]) -> ConductAccess:
    """For ``meeting.html`` (a jinja global): which conduct pages to link from a meeting."""
    invited = [inv for group in groups for inv in group.invitations]
    return conduct_access(principal, scope_of(meeting, invitations=invited))


def console_context(meeting: Meeting, access: ConductAccess, invitations: list[Invitation],
                    people: dict[str, str]) -> dict[str, Any]:
    points = sorted(invitations, key=lambda i: (i.point.level.rank, i.point.code))
    return {
        "meeting": meeting, "access": access, "people": people,
        "invited_count": len(points),
        "console_data": {
            "meeting_id": meeting.id, "state": meeting.state.value,
            "can_control": access.control, "can_edit": access.edit,
            "points": [{"code": i.point.code, "name": i.point.name, "level": i.point.level.value} for i in points],
        },
    }


def room_context(meeting: Meeting, principal: Principal, *, via_link: bool) -> dict[str, Any]:
    point = principal.point
    assert point is not None
    return {
        "meeting": meeting, "point": point, "via_link": via_link,
        "room_data": {
            "meeting_id": meeting.id, "state": meeting.state.value, "point_code": point.code,
            "point_name": point.name, "via_link": via_link, "delegate": principal.kind == "user",
        },
    }


# --- handlers -------------------------------------------------------------------------------

async def _people(request: web.Request, meeting: Meeting) -> dict[str, str]:
    services = request.app[SERVICES]
    out: dict[str, str] = {}
    for key, user_id in (("chair", meeting.chair_id), ("secretary", meeting.secretary_id)):
        if user_id is None:
            continue
        try:
            user = await services.accounts.get(user_id)
        except NotFound:
            continue
        out[key] = user.display_name or user.username
    return out


@page
async def console_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    services = request.app[SERVICES]
    scope = await services.calendar.scope(_meeting_id(request))
    require(principal, Action.MEETING_VIEW, scope)
    access = conduct_access(principal, scope)
    if not access.console:
        raise Forbidden("the console is for the meeting's chair and secretary", code="forbidden")
    invitations = await services.calendar.invitations(scope.meeting.id)
    people = await _people(request, scope.meeting)
    return await render(request, "_console_page.html",
                        console_context(scope.meeting, access, invitations, people), page="console")


def room_path(meeting_id: int) -> str:
    return f"/meetings/{meeting_id}/room"


def _room_cookie_token(request: web.Request) -> str | None:
    raw = request.cookies.get(ROOM_COOKIE)
    token = unsign_cookie(request.app[SERVICES].secret, raw) if raw else None
    return token if token and token.startswith("dci_") else None


@page
async def member_room_page(request: web.Request) -> web.StreamResponse:
    """``/meetings/{id}/room``: a logged-in delegate at an invited point, or a hall PC that
    opened its invitation link in this browser (the room cookie) — the address the link room
    moves to, so the token leaves the address bar."""
    meeting_id = _meeting_id(request)
    services = request.app[SERVICES]
    scope = await services.calendar.scope(meeting_id)
    principal = await _principal_or_none(request)
    if principal is not None and conduct_access(principal, scope).room:
        return await render(request, "room.html", room_context(scope.meeting, principal, via_link=False),
                            page="room")
    token = _room_cookie_token(request)
    if token is not None:
        try:
            response = await _link_room(request, token, meeting_id=meeting_id)
        except (Unauthenticated, NotFound) as exc:
            if principal is None:
                return await error_page(request, 410 if exc.code in ("token_expired", "meeting_closed") else 404,
                                        exc.code)
            response = None
        if response is not None:
            return response
    principal = await require_user(request)
    require(principal, Action.MEETING_VIEW, scope)
    raise Forbidden("only participants at an invited bridge point have a room", code="forbidden")


async def _link_room(request: web.Request, token: str, *, meeting_id: int | None = None) -> web.Response | None:
    """The room of the point ``token`` admits; None when it admits to another meeting."""
    services = request.app[SERVICES]
    point, admitted = await services.calendar.resolve_invitation(token)
    if meeting_id is not None and admitted != meeting_id:
        return None
    meeting = await services.calendar.get(admitted)
    context = room_context(meeting, Principal("point", point=point, meeting_id=admitted), via_link=True)
    context["room_data"]["address"] = room_path(admitted)
    response = await render(request, "room.html", context, page="room")
    response.headers["Referrer-Policy"] = "no-referrer"  # the token may be in this page's address
    response.set_cookie(ROOM_COOKIE, sign_cookie(services.secret, token), path=room_path(admitted),
                        httponly=True, samesite="Strict", secure=cookie_secure(request))
    return response


async def link_room_page(request: web.Request) -> web.StreamResponse:
    """The room of a hall PC admitted by its invitation link (``/join/{token}/room``). It also
    leaves an HttpOnly cookie for ``/meetings/{id}/room``, where the page then moves."""
    token = request.match_info["token"]
    try:
        if not token.startswith("dci_"):
            raise Unauthenticated("not an invitation link", code="invalid_token")
        response = await _link_room(request, token)
    except (Unauthenticated, NotFound) as exc:
        return await error_page(request, 410 if exc.code in ("token_expired", "meeting_closed") else 404, exc.code)
    assert response is not None
    return response


def audit_context(query: dict[str, str]) -> dict[str, Any]:
    meeting_id = query.get("meeting_id", "")
    return {
        "filters": {"meeting_id": meeting_id if meeting_id.isdigit() else "", "action": query.get("action", "")[:64]},
        "audit_data": {"limit": 50},
    }


@page
async def audit_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    require(principal, Action.AUDIT_VIEW)
    return await render(request, "audit.html", audit_context(dict(request.query)), page="audit")


def setup(app: web.Application) -> None:
    """Conduct page routes; called by ``server/pages.py`` after the jinja2 environments exist."""
    for key in ENV_KEYS.values():
        env: jinja2.Environment = app[key]
        env.globals["conduct_links"] = meeting_conduct_links
    app.router.add_get(r"/meetings/{meeting_id:\d+}/console", console_page)
    app.router.add_get(r"/meetings/{meeting_id:\d+}/room", member_room_page)
    app.router.add_get("/join/{token}/room", link_room_page)
    app.router.add_get("/audit", audit_page)

