"""Meeting recordings (ghi hình): start/stop (chair, admin), list and download (staff),
the running state for every participant (the "● Đang ghi hình" badge). docs/recording.md."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.clock import isoformat
from meetings.errors import NotFound
from meetings.permissions import Action
from meetings.recordings import COMPLETED, Recording

from ..auth import authorize
from ..openapi import operation
from ..recording_service import RECORDING
from .body import path_int
from .documents import _disposition

TAGS = ["recordings"]

RECORDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "meeting_id", "status", "started_at"],
    "properties": {
        "id": {"type": "integer"}, "meeting_id": {"type": "integer"},
        "status": {"type": "string", "enum": ["recording", "completed", "failed", "interrupted"]},
        "started_at": {"type": "string", "format": "date-time"},
        "stopped_at": {"type": "string", "format": "date-time", "nullable": True},
        "duration_s": {"type": "number", "nullable": True},
        "size_bytes": {"type": "integer", "nullable": True},
        "started_by": {"type": "string"}, "stop_reason": {"type": "string"},
        "width": {"type": "integer"}, "height": {"type": "integer"}, "fps": {"type": "integer"},
        "url": {"type": "string", "nullable": True, "description": "download (completed only)"},
    },
}
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["recording"],
    "properties": {"recording": {"type": "boolean"},
                   "recording_id": {"type": "integer", "nullable": True},
                   "started_at": {"type": "string", "format": "date-time", "nullable": True}},
}


def file_url(rec: Recording) -> str:
    return f"/api/recordings/{rec.id}/file"


def recording_json(rec: Recording) -> dict[str, Any]:
    return {"id": rec.id, "meeting_id": rec.meeting_id, "status": rec.status,
            "started_at": isoformat(rec.started_at), "stopped_at": isoformat(rec.stopped_at),
            "duration_s": rec.duration_s, "size_bytes": rec.size_bytes, "started_by": rec.started_by,
            "stop_reason": rec.stop_reason, "width": rec.width, "height": rec.height, "fps": rec.fps,
            "url": file_url(rec) if rec.status == COMPLETED else None}


@operation("startRecording", "Start recording the meeting (chair, admin)", tags=TAGS, status=201,
           response=RECORDING_SCHEMA, errors=(401, 403, 404, 409),
           description="Records the main screen as it switches and the mixed audio of the speakers "
           "into WebM (VP8 + Opus). 409 recording_running when one already runs, recording_disabled, "
           "meeting_closed. Every participant gets recording.started.")
async def start_recording(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.RECORDING_CONTROL, meeting_id)
    rec = await request.app[RECORDING].begin(meeting_id, principal)
    return web.json_response(recording_json(rec), status=201)


@operation("stopRecording", "Stop the running recording; the file is finalised (chair, admin)", tags=TAGS,
           response=RECORDING_SCHEMA, errors=(401, 403, 404, 409),
           description="404 recording_not_found for an unknown id (or one of another meeting); 409 "
           "recording_not_running when it already ended. Every participant gets recording.stopped.")
async def stop_recording(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    recording_id = path_int(request, "recording_id")
    principal, _ = await authorize(request, Action.RECORDING_CONTROL, meeting_id)
    rec = await request.app[RECORDING].stop(meeting_id, principal, "stopped", recording_id)
    return web.json_response(recording_json(rec))


@operation("listRecordings", "The meeting's recordings (staff)", tags=TAGS,
           response={"type": "object", "properties": {"recordings": {"type": "array", "items": RECORDING_SCHEMA}}})
async def list_recordings(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.RECORDING_VIEW, meeting_id)
    recs = await request.app[RECORDING].domain.list(meeting_id)
    return web.json_response({"recordings": [recording_json(r) for r in recs]})


@operation("getRecordingStatus", "Whether the meeting is being recorded (every participant)", tags=TAGS,
           response=STATUS_SCHEMA)
async def get_recording_status(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.MEETING_VIEW, meeting_id)
    rec = await request.app[RECORDING].domain.running(meeting_id)
    return web.json_response({"recording": rec is not None, "recording_id": rec.id if rec else None,
                              "started_at": isoformat(rec.started_at) if rec else None})


@operation("getRecordingFile", "Download a completed recording (staff; HTTP Range supported)", tags=TAGS,
           response={"type": "string", "format": "binary"}, response_content_type="video/webm",
           description="ETag and Range (206) so a broken download resumes; 404 while it runs or if it failed.")
async def get_recording_file(request: web.Request) -> web.StreamResponse:
    service = request.app[RECORDING]
    rec = await service.domain.get(path_int(request, "recording_id"))
    await authorize(request, Action.RECORDING_VIEW, rec.meeting_id)
    path = service.path_of(rec)
    if rec.status != COMPLETED or not path.is_file():
        raise NotFound(f"recording {rec.id} has no file to download", code="recording_not_found")
    name = f"ghi-hinh-hop-{rec.meeting_id}-{rec.id}.webm"
    return web.FileResponse(path, headers={"Content-Type": "video/webm",
                                           "Content-Disposition": _disposition(name),
                                           "Cache-Control": "private, max-age=3600"})


def setup(app: web.Application) -> None:
    from .. import recording_service

    recording_service.setup(app)
    r = app.router
    r.add_post("/api/meetings/{meeting_id}/recordings", start_recording)
    r.add_get("/api/meetings/{meeting_id}/recordings", list_recordings)
    r.add_get("/api/meetings/{meeting_id}/recordings/status", get_recording_status)
    r.add_post("/api/meetings/{meeting_id}/recordings/{recording_id}/stop", stop_recording)
    r.add_get("/api/recordings/{recording_id}/file", get_recording_file)
