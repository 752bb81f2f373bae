"""The monitoring page (giám sát) of a meeting: every invited bridge point with its state
(online / offline / refused), its link quality (RTT, loss, bitrate, fps, rendition) and whether
it receives the main screen, with an alert box listing the points whose link degrades.

``/meetings/{id}/monitor`` is for the meeting's staff and admins (``Action.MEDIA_CONSOLE``).
The server renders the invited points grouped by district; ``web/static/js/monitor.js`` fills
the live columns from the ``media.stats`` messages and ``admission.refused`` events of the
meeting's WebSocket (docs/protocol.md). The same figures are in ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.errors import Forbidden
from meetings.models import Invitation, Meeting
from meetings.permissions import Action, allowed, require

from .keys import SERVICES
from .pages import PointGroup, _meeting_id, group_invitations, page, render, require_user

# A publishing point is degraded above these (the thresholds of the national criteria item 5).
DEGRADED = {"loss_pct": 5.0, "rtt_ms": 400.0, "fps": 10.0}


def monitor_context(meeting: Meeting, invitations: list[Invitation], groups: list[PointGroup]) -> dict[str, Any]:
    return {
        "meeting": meeting, "groups": groups, "invited_count": len(invitations),
        "monitor_data": {
            "meeting_id": meeting.id, "state": meeting.state.value, "thresholds": DEGRADED,
            "points": [{"code": i.point.code, "name": i.point.name, "level": i.point.level.value}
                       for g in groups for i in g.invitations],
        },
    }


@page
async def monitor_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    services = request.app[SERVICES]
    scope = await services.calendar.scope(_meeting_id(request))
    require(principal, Action.MEETING_VIEW, scope)
    if not allowed(principal, Action.MEDIA_CONSOLE, scope):
        raise Forbidden("monitoring is for the meeting's chair, secretary and admins", code="forbidden")
    invitations = await services.calendar.invitations(scope.meeting.id)
    points = await services.registry.list()
    groups = group_invitations(invitations, points)
    return await render(request, "monitor.html", monitor_context(scope.meeting, invitations, groups),
                        page="monitor")


def setup(app: web.Application) -> None:
    """The monitoring page route; called by ``server/pages.py``."""
    app.router.add_get(r"/meetings/{meeting_id:\d+}/monitor", monitor_page)
