"""The audit log (nhật ký): who did what and when; admins only. Newest first, paged by before_id."""

from __future__ import annotations

from aiohttp import web

from meetings.clock import isoformat
from meetings.permissions import Action

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .params import query_int, query_str
from .schemas import ref

TAGS = ["audit"]


@operation("listAudit", "The audit log, newest first (admins)", tags=TAGS, response=ref("AuditList"),
           errors=(400, 401, 403),
           query=[("meeting_id", {"type": "integer", "minimum": 1}, "only this meeting"),
                  ("action", {"type": "string", "maxLength": 64}, "only this action, e.g. vote.open"),
                  ("before_id", {"type": "integer", "minimum": 1}, "entries older than this id (paging)"),
                  ("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200}, "page size")])
async def list_audit(request: web.Request) -> web.Response:
    await authorize(request, Action.AUDIT_VIEW)
    meeting_id = query_int(request, "meeting_id", default=0, low=1, high=2**31 - 1) if request.query.get(
        "meeting_id") else None
    before_id = query_int(request, "before_id", default=0, low=1, high=2**63 - 1) if request.query.get(
        "before_id") else None
    entries = await request.app[SERVICES].audit.list(
        meeting_id=meeting_id, action=query_str(request, "action", max_len=64), before_id=before_id,
        limit=query_int(request, "limit", default=200, low=1, high=1000))
    return web.json_response({"entries": [{
        "id": e.id, "at": isoformat(e.at), "actor_label": e.actor_label, "actor_kind": e.actor_kind,
        "action": e.action, "meeting_id": e.meeting_id, "target": e.target, "details": dict(e.details),
    } for e in entries]})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/audit", list_audit)
