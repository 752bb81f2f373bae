"""Meeting documents (tài liệu họp): limits, upload, list, versions, page images, download,
search and the meeting pack. Every document, page, search hit and download checks the
document's own visibility after the meeting-level permission."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from meetings.clock import isoformat
from meetings.documents import PAGE_KINDS
from meetings.errors import Invalid, NotFound
from meetings.library import REPAIRED_WARNING, DocumentDraft
from meetings.library_models import Document, DocumentAccess, may_see, safe_filename
from meetings.library_pack import build_pack
from meetings.library_search import search_meeting
from meetings.models import Principal
from meetings.permissions import Action, MeetingScope
from meetings.store.files import StoredFile

from ..auth import authorize, current_principal
from ..keys import SERVICES
from ..openapi import operation
from .body import field_str, path_int
from .params import query_str, strict_json_body

TAGS = ["documents"]
CHUNK = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024
UPLOAD_FIELDS = {"title", "agenda_item_id", "visibility", "allowed_roles", "allowed_points"}
IMMUTABLE = "private, max-age=31536000, immutable"

VERSION_SCHEMA = {
    "type": "object",
    "properties": {
        "version": {"type": "integer"}, "sha256": {"type": "string"}, "filename": {"type": "string"},
        "page_count": {"type": "integer"}, "size_bytes": {"type": "integer"},
        "uploaded_at": {"type": "string", "format": "date-time"}, "uploaded_by": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "repaired": {"type": "boolean", "description": "MuPDF repaired the file: some pages may be blank"},
        "pages": {"type": "array", "items": {"type": "object", "properties": {
            "page": {"type": "integer"}, "width_pt": {"type": "number"}, "height_pt": {"type": "number"}}}},
        "rendered_pages": {"type": "integer"},
    },
}
DOCUMENT_SCHEMA = {
    "type": "object",
    "required": ["id", "meeting_id", "title", "visibility", "current_version", "versions"],
    "properties": {
        "id": {"type": "integer"}, "meeting_id": {"type": "integer"}, "title": {"type": "string"},
        "agenda_item_id": {"type": "integer", "nullable": True},
        "visibility": {"type": "string", "enum": ["all", "restricted"]},
        "allowed_roles": {"type": "array", "items": {"type": "string"}},
        "allowed_points": {"type": "array", "items": {"type": "string"}},
        "current_version": {"type": "integer"},
        "versions": {"type": "array", "items": VERSION_SCHEMA},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}
UPLOAD_SCHEMA = {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"}, "title": {"type": "string"},
                   "agenda_item_id": {"type": "integer"},
                   "visibility": {"type": "string", "enum": ["all", "restricted"]},
                   "allowed_roles": {"type": "string", "description": "comma-separated roles"},
                   "allowed_points": {"type": "string", "description": "comma-separated point codes"}},
}
BINARY = {"type": "string", "format": "binary"}


def document_json(request: web.Request, document: Document) -> dict[str, Any]:
    library = request.app[SERVICES].library
    return {
        "id": document.id, "meeting_id": document.meeting_id, "title": document.title,
        "agenda_item_id": document.agenda_item_id, "visibility": document.visibility,
        "allowed_roles": list(document.allowed_roles), "allowed_points": list(document.allowed_points),
        "current_version": document.current_version,
        "created_at": isoformat(document.created_at),
        "versions": [{
            "version": v.version, "sha256": v.sha256, "filename": v.filename, "page_count": v.page_count,
            "size_bytes": v.size_bytes, "uploaded_at": isoformat(v.uploaded_at), "uploaded_by": v.uploaded_by,
            "warnings": list(v.warnings), "repaired": REPAIRED_WARNING in v.warnings,
            "pages": [{"page": i, "width_pt": p.width_pt, "height_pt": p.height_pt}
                      for i, p in enumerate(v.pages, start=1)],
            "rendered_pages": library.rendered_pages(v),
        } for v in document.versions],
    }


async def visible_document(request: web.Request, action: Action = Action.DOCUMENT_VIEW
                           ) -> tuple[Principal, MeetingScope | None, Document]:
    """The document of the path, after the meeting permission and its own visibility."""
    document_id = path_int(request, "document_id")
    await current_principal(request)
    document = await request.app[SERVICES].library.get(document_id)
    principal, scope = await authorize(request, action, document.meeting_id)
    if not may_see(document, principal, scope):
        raise NotFound("no such document", code="not_found", details={"document_id": document_id})
    return principal, scope, document


async def visible_documents(request: web.Request, meeting_id: int) -> list[Document]:
    principal, scope = await authorize(request, Action.DOCUMENT_VIEW, meeting_id)
    found = await request.app[SERVICES].library.list(meeting_id)
    return [d for d in found if may_see(d, principal, scope)]


@operation("getUploadLimits", "What an upload may be, shown before uploading", tags=TAGS,
           response={"type": "object", "properties": {
               "max_bytes": {"type": "integer"}, "max_pages": {"type": "integer"},
               "max_page_pt": {"type": "number"}, "accepted": {"type": "array", "items": {"type": "string"}}}})
async def get_upload_limits(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.DOCUMENT_VIEW, meeting_id)
    limits = request.app[SERVICES].renderer.limits
    return web.json_response({"max_bytes": limits.max_bytes, "max_pages": limits.max_pages,
                              "max_page_pt": limits.max_page_pt, "accepted": ["application/pdf"]})


@operation("listDocuments", "Documents of a meeting the caller may see", tags=TAGS,
           response={"type": "object", "properties": {"documents": {"type": "array", "items": DOCUMENT_SCHEMA}}})
async def list_documents(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    docs = await visible_documents(request, meeting_id)
    return web.json_response({"documents": [document_json(request, d) for d in docs]})


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def receive_upload(request: web.Request, *, fields: set[str]) -> tuple[StoredFile, str, dict[str, str]]:
    """Stream the multipart ``file`` part to the file store (never whole in memory) and read
    the small text fields. Anything wrong after the file was stored discards it again."""
    services = request.app[SERVICES]
    limits = services.renderer.limits
    if not request.content_type.startswith("multipart/form-data"):
        raise Invalid("send the file as multipart/form-data", code="unsupported_media_type")
    if request.content_length is not None and request.content_length > limits.max_bytes + 64 * 1024:
        raise Invalid(f"file is larger than {limits.max_bytes} bytes", code="file_too_large",
                      details={"max_bytes": limits.max_bytes})
    stored: StoredFile | None = None
    filename = ""
    values: dict[str, str] = {}
    try:
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise Invalid("nested multipart is not accepted", code="malformed_multipart")
                name = part.name or ""
                if name == "file":
                    if stored is not None:
                        raise Invalid("send one file per upload", code="invalid_field", details={"field": "file"})
                    filename = safe_filename(part.filename)
                    stored = await services.files.put_stream(_chunks(part), max_bytes=limits.max_bytes)
                elif name in fields:
                    raw = b""
                    while chunk := await part.read_chunk(MAX_FIELD_BYTES + 1):
                        raw += chunk
                        if len(raw) > MAX_FIELD_BYTES:
                            raise Invalid(f"{name}: too long", code="invalid_field", details={"field": name})
                    try:
                        values[name] = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise Invalid(f"{name}: not UTF-8 text", code="invalid_field",
                                      details={"field": name}) from None
                else:
                    raise Invalid(f"unknown field {name!r}", code="invalid_field", details={"field": name})
        except (ValueError, AssertionError, asyncio.IncompleteReadError, HttpProcessingError) as exc:
            raise Invalid(f"the upload could not be read: {exc}", code="malformed_multipart") from None
        if stored is None:
            raise Invalid("file: required", code="missing_field", details={"field": "file"})
    except BaseException:
        if stored is not None:
            await services.library.discard_upload(stored)
        raise
    return stored, filename, values


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (text or "").split(",") if v.strip()))


def _opt_int(values: dict[str, str], name: str) -> int | None:
    text = values.get(name, "").strip()
    if not text or text == "null":
        return None
    try:
        number = int(text)
    except ValueError:
        raise Invalid(f"{name}: expected an integer", code="invalid_field", details={"field": name}) from None
    if not 0 < number < 2**31:
        raise Invalid(f"{name}: out of range", code="invalid_field", details={"field": name})
    return number


@operation("uploadDocument", "Upload a PDF to a meeting (streamed; rendered in the background)", tags=TAGS,
           status=201, request=UPLOAD_SCHEMA, request_content_type="multipart/form-data",
           response=DOCUMENT_SCHEMA, errors=(400, 401, 403, 404),
           description="The type is detected from the content. Refusals: not_pdf, empty_file, encrypted_pdf, "
           "too_many_pages, page_too_large, corrupt_pdf, timeout, file_too_large. A repaired file is "
           "accepted with warnings. Events: document.progress, document.ready (ids and counts only).")
async def upload_document(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.DOCUMENT_UPLOAD, meeting_id)
    services = request.app[SERVICES]
    stored, filename, values = await receive_upload(request, fields=UPLOAD_FIELDS)
    try:
        draft = DocumentDraft(
            title=values.get("title", ""), agenda_item_id=_opt_int(values, "agenda_item_id"),
            access=DocumentAccess(values.get("visibility", "all").strip() or "all",
                                  _csv(values.get("allowed_roles")), _csv(values.get("allowed_points"))))
    except BaseException:
        await services.library.discard_upload(stored)
        raise
    document = await services.library.add(meeting_id, stored, filename, draft, principal)
    body = document_json(request, document)
    body["warnings"] = list(document.current.warnings)
    return web.json_response(body, status=201)


@operation("getDocument", "A document with its versions and pages", tags=TAGS, response=DOCUMENT_SCHEMA)
async def get_document(request: web.Request) -> web.Response:
    _, _, document = await visible_document(request)
    return web.json_response(document_json(request, document))


@operation("replaceDocument", "Publish a new version of a document", tags=TAGS, status=201,
           request={"type": "object", "required": ["file"], "properties": {"file": BINARY}},
           request_content_type="multipart/form-data", response=DOCUMENT_SCHEMA,
           description="Annotations stay on the version they were made on. Event: document.version.")
async def replace_document(request: web.Request) -> web.Response:
    principal, _, document = await visible_document(request, Action.DOCUMENT_UPLOAD)
    services = request.app[SERVICES]
    stored, filename, _ = await receive_upload(request, fields=set())
    updated = await services.library.replace(document.id, stored, filename, principal)
    body = document_json(request, updated)
    body["warnings"] = list(updated.current.warnings)
    return web.json_response(body, status=201)


def _str_list(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name) or []
    if isinstance(value, str):
        return _csv(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{name}: a list of strings", code="invalid_field", details={"field": name})
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


@operation("updateDocument", "Change a document's title, agenda item or visibility", tags=TAGS,
           request={"type": "object", "properties": {
               "title": {"type": "string", "maxLength": 500},
               "agenda_item_id": {"type": "integer", "nullable": True},
               "visibility": {"type": "string", "enum": ["all", "restricted"]},
               "allowed_roles": {"type": "array", "items": {"type": "string"}},
               "allowed_points": {"type": "array", "items": {"type": "string"}}}},
           response=DOCUMENT_SCHEMA, description="Event: documents.changed.")
async def update_document(request: web.Request) -> web.Response:
    _, _, document = await visible_document(request, Action.DOCUMENT_UPLOAD)
    body = await strict_json_body(request)
    unknown = set(body) - UPLOAD_FIELDS
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})
    title = field_str(body, "title", max_len=2000) if "title" in body else None
    item = body.get("agenda_item_id")
    if item is not None and (isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**31):
        raise Invalid("agenda_item_id: an agenda item id", code="invalid_field", details={"field": "agenda_item_id"})
    access = None
    if {"visibility", "allowed_roles", "allowed_points"} & set(body):
        access = DocumentAccess(
            field_str(body, "visibility", max_len=16) if "visibility" in body else document.visibility,
            _str_list(body, "allowed_roles") if "allowed_roles" in body else document.allowed_roles,
            _str_list(body, "allowed_points") if "allowed_points" in body else document.allowed_points)
    updated = await request.app[SERVICES].library.update_access(
        document.id, title=title, agenda_item_id=item, clear_item="agenda_item_id" in body and item is None,
        access=access)
    return web.json_response(document_json(request, updated))


@operation("deleteDocument", "Remove a document and its versions", tags=TAGS, status=204)
async def delete_document(request: web.Request) -> web.Response:
    principal, _, document = await visible_document(request, Action.DOCUMENT_UPLOAD)
    await request.app[SERVICES].library.delete(document.id, principal)
    return web.Response(status=204)


@operation("getPageImage", "One page as an image (view or thumbnail)", tags=TAGS, response=BINARY,
           response_content_type="image/jpeg",
           description="Immutable: Cache-Control private, max-age=31536000, immutable, with an ETag. A page "
           "that could not be rendered gets a placeholder served with no-store.")
async def get_page_image(request: web.Request) -> web.StreamResponse:
    _, _, document = await visible_document(request)
    version = document.version(path_int(request, "version"))
    try:
        page = int(request.match_info["page"])
    except ValueError:
        raise Invalid("page: expected an integer", code="invalid_path") from None
    kind = request.match_info["kind"]
    if kind not in PAGE_KINDS:
        raise NotFound("unknown page image kind", code="not_found")
    version.check_page(page)
    renderer = request.app[SERVICES].renderer
    limits = renderer.limits
    etag = f'"{version.sha256[:24]}-{page}-{kind}-{limits.width_of(kind)}-q{limits.image_quality}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    path = request.app[SERVICES].files.path_of(version.sha256)
    image = await renderer.render(version.sha256, path, page, kind)  # type: ignore[arg-type]
    data = await asyncio.to_thread(image.path.read_bytes)
    headers = {"Cache-Control": "no-store"} if image.placeholder else {"Cache-Control": IMMUTABLE, "ETag": etag}
    return web.Response(body=data, content_type=image.media_type, headers=headers)


def _disposition(filename: str) -> str:
    ascii_name = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@operation("downloadDocument", "The original PDF of a version (HTTP Range supported)", tags=TAGS,
           response=BINARY, response_content_type="application/pdf")
async def download_document(request: web.Request) -> web.StreamResponse:
    _, _, document = await visible_document(request)
    version = document.version(path_int(request, "version"))
    path = request.app[SERVICES].files.path_of(version.sha256)
    return web.FileResponse(path, headers={"Content-Type": "application/pdf",
                                           "Content-Disposition": _disposition(version.filename),
                                           "Cache-Control": "private, max-age=3600"})


@operation("searchMeeting", "Search the text of a meeting's documents (diacritics optional)", tags=TAGS,
           query=[("q", {"type": "string", "maxLength": 200}, "words to find; with or without diacritics")],
           response={"type": "object", "properties": {"hits": {"type": "array", "items": {
               "type": "object", "properties": {
                   "document_id": {"type": "integer"}, "version": {"type": "integer"}, "title": {"type": "string"},
                   "page": {"type": "integer"}, "snippet": {"type": "string"},
                   "highlight": {"type": "array", "items": {"type": "integer"}}}}}}})
async def search(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    docs = await visible_documents(request, meeting_id)
    query = query_str(request, "q", max_len=200) or ""
    hits = await search_meeting(request.app[SERVICES].db, meeting_id, query,
                                document_ids=[d.id for d in docs])
    return web.json_response({"hits": [
        {"document_id": h.document_id, "version": h.version, "title": h.title, "page": h.page,
         "snippet": h.snippet, "highlight": list(h.highlight)} for h in hits]})


@operation("downloadMeetingPack", "One zip of every document of the meeting the caller may see", tags=TAGS,
           response=BINARY, response_content_type="application/zip",
           description="Current versions; HTTP Range is supported so a broken download resumes.")
async def download_pack(request: web.Request) -> web.StreamResponse:
    meeting_id = path_int(request, "meeting_id")
    docs = await visible_documents(request, meeting_id)
    if not docs:
        raise NotFound("this meeting has no documents you can see", code="not_found")
    services = request.app[SERVICES]
    path = await asyncio.to_thread(build_pack, services.files, services.config.data_path / "packs", docs)
    return web.FileResponse(path, headers={
        "Content-Type": "application/zip",
        "Content-Disposition": _disposition(f"tai-lieu-hop-{meeting_id}.zip"),
        "Cache-Control": "private, no-cache"})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/meetings/{meeting_id}/documents/limits", get_upload_limits)
    r.add_get("/api/meetings/{meeting_id}/documents", list_documents)
    r.add_post("/api/meetings/{meeting_id}/documents", upload_document)
    r.add_get("/api/meetings/{meeting_id}/search", search)
    r.add_get("/api/meetings/{meeting_id}/pack", download_pack)
    r.add_get("/api/documents/{document_id}", get_document)
    r.add_patch("/api/documents/{document_id}", update_document)
    r.add_delete("/api/documents/{document_id}", delete_document)
    r.add_post("/api/documents/{document_id}/versions", replace_document)
    r.add_get("/api/documents/{document_id}/versions/{version}/pages/{page}/{kind}", get_page_image)
    r.add_get("/api/documents/{document_id}/versions/{version}/file", download_document)
