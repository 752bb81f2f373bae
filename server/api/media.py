"""The chair's media commands: put a point on every point's main screen (màn hình chính).

The main-screen state belongs to the meeting-conduct domain (``meetings/floor.py``); until it
offers a setter, :class:`server.media_service.MediaService` keeps the chair's choice and
announces it as ``main_screen.changed`` (see the CONDUCT HOOK there).
"""

from __future__ import annotations

from aiohttp import web

from meetings.errors import Invalid
from meetings.permissions import Action

from ..auth import authorize
from ..media_service import MEDIA
from ..openapi import operation
from .body import field_str, path_int
from .params import strict_json_body
from .schemas import ref

TAGS = ["media"]
MAX_CODE = 64


@operation("setMainScreen", "Put a point on every point's main screen (chair)", tags=TAGS,
           request=ref("MainScreenSet"), response=ref("MainScreen"), errors=(400, 401, 403, 404),
           description="Every session's main slot switches to the point's camera at its next "
           "keyframe; sessions get media.main and media.slots. A later floor grant or revoke "
           "moves the main screen again.")
async def set_main_screen(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, scope = await authorize(request, Action.MEDIA_MAIN_SCREEN, meeting_id)
    body = await strict_json_body(request)
    unknown = set(body) - {"point_code"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})
    code = field_str(body, "point_code", max_len=MAX_CODE)
    if not code:
        raise Invalid("point_code: required", code="missing_field", details={"field": "point_code"})
    assert scope is not None
    main = await request.app[MEDIA].set_main_screen(meeting_id, principal, scope, code)
    return web.json_response({"point_code": main.point_code, "label": main.label,
                              "reason": main.reason})


def setup(app: web.Application) -> None:
    from .. import media_service

    media_service.setup(app)
    app.router.add_post("/api/meetings/{meeting_id}/main-screen", set_main_screen)
