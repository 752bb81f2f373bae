"""Minutes (biên bản): conclusions, generate a new PDF version, list and download versions.
Domain in ``meetings/minutes.py`` and ``meetings/minutes_pdf.py``."""

from __future__ import annotations

from aiohttp import web

from meetings.clock import isoformat
from meetings.errors import Invalid
from meetings.minutes import RecordingLine, read_recordings
from meetings.permissions import Action

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import field_opt_str, field_str, path_int
from .floor import optional_body
from .schemas import ref

TAGS = ["minutes"]


def pdf_url(meeting_id: int, version: int) -> str:
    return f"/api/meetings/{meeting_id}/minutes/{version}.pdf"


@operation("generateMinutes", "Generate a new version of the minutes from the record (secretary/chair)",
           tags=TAGS, status=201, request=ref("MinutesGenerate"), response=ref("MinutesGenerated"),
           errors=(400, 401, 403, 404),
           description="conclusions, when given, are saved first. number is the document number "
           "(Số …/BB-UBND); place the place name of the date line; issuer the issuing body "
           "(default: ỦY BAN NHÂN DÂN + the host point's name).")
async def generate_minutes(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.MINUTES_EDIT, meeting_id)
    body = await optional_body(request, {"conclusions", "number", "place", "issuer"})
    made = await request.app[SERVICES].minutes.generate(
        meeting_id, principal, conclusions=field_opt_str(body, "conclusions", max_len=60000),
        number=field_str(body, "number", required=False, max_len=200),
        place=field_str(body, "place", required=False, max_len=200),
        issuer=field_str(body, "issuer", required=False, max_len=200))
    return web.json_response({"version": made.version, "generated_at": isoformat(made.generated_at),
                              "pages": made.pages, "url": pdf_url(meeting_id, made.version)}, status=201)


@operation("listMinutes", "The minutes' versions and the current conclusions (secretary/chair)", tags=TAGS,
           response=ref("MinutesList"))
async def list_minutes(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MINUTES_EDIT, meeting_id)
    minutes = request.app[SERVICES].minutes
    versions = await minutes.versions(meeting_id)
    return web.json_response({
        "versions": [{"version": v.version, "generated_at": isoformat(v.generated_at),
                      "generated_by": v.generated_by, "pages": v.pages, "url": pdf_url(meeting_id, v.version)}
                     for v in versions],
        "conclusions": await minutes.conclusions(meeting_id),
        # what the minutes say about the recordings (ghi hình): completed ones, in order
        "recordings": [{"id": r.id, "started_at": isoformat(r.started_at), "stopped_at": isoformat(r.stopped_at),
                        "duration_s": r.duration_s} for r in await _recordings(request, meeting_id)],
    })


async def _recordings(request: web.Request, meeting_id: int) -> tuple[RecordingLine, ...]:
    async with request.app[SERVICES].db.connect() as conn:
        return await read_recordings(conn, meeting_id)


@operation("setConclusions", "Write the conclusions (kết luận) of the minutes (secretary/chair)", tags=TAGS,
           request=ref("ConclusionsSet"), response=ref("Conclusions"), errors=(400, 401, 403, 404))
async def set_conclusions(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.MINUTES_EDIT, meeting_id)
    body = await optional_body(request, {"text"})
    text = await request.app[SERVICES].minutes.set_conclusions(meeting_id, principal,
                                                                field_str(body, "text", max_len=60000))
    return web.json_response({"text": text})


@operation("getMinutesPdf", "One version of the minutes as PDF (secretary/chair)", tags=TAGS,
           response={"type": "string", "format": "binary"}, response_content_type="application/pdf")
async def get_minutes_pdf(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    raw = request.match_info.get("version", "")
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise Invalid("version: a positive integer", code="invalid_path")
    await authorize(request, Action.MINUTES_EDIT, meeting_id)
    data = await request.app[SERVICES].minutes.pdf(meeting_id, int(raw))
    name = f"bien-ban-{meeting_id}-v{raw}.pdf"
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, max-age=31536000, immutable"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/meetings/{meeting_id}/minutes", generate_minutes)
    app.router.add_get("/api/meetings/{meeting_id}/minutes", list_minutes)
    app.router.add_put("/api/meetings/{meeting_id}/minutes/conclusions", set_conclusions)
    app.router.add_get("/api/meetings/{meeting_id}/minutes/{version}.pdf", get_minutes_pdf)
