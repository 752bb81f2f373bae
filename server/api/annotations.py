"""Annotations on a document version, and the annotated PDF export."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from meetings.annotated_export import export_annotated
from meetings.annotations import LAYERS, Annotation, author_key
from meetings.clock import isoformat
from meetings.errors import Forbidden, Invalid
from meetings.library_models import may_see
from meetings.permissions import Action, require

from ..auth import authorize, current_principal
from ..keys import SERVICES
from ..openapi import operation
from .body import field_str, path_int
from .documents import BINARY, _disposition, visible_document
from .params import query_str, strict_json_body

TAGS = ["annotations"]

ANNOTATION_SCHEMA = {
    "type": "object",
    "required": ["id", "document_id", "version", "page", "layer", "kind", "data"],
    "properties": {
        "id": {"type": "integer"}, "document_id": {"type": "integer"}, "version": {"type": "integer"},
        "page": {"type": "integer"}, "layer": {"type": "string", "enum": list(LAYERS)},
        "kind": {"type": "string", "enum": ["ink", "highlight", "note", "arrow"]},
        "data": {"type": "object", "description": "coordinates normalised 0..1 to the page, origin top-left"},
        "author": {"type": "string"}, "mine": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}


def annotation_json(annotation: Annotation, mine: bool) -> dict[str, Any]:
    return {"id": annotation.id, "document_id": annotation.document_id, "version": annotation.version,
            "page": annotation.page, "layer": annotation.layer, "kind": annotation.kind,
            "data": annotation.data, "author": annotation.author_label, "mine": mine,
            "created_at": isoformat(annotation.created_at),
            "updated_at": isoformat(annotation.updated_at) if annotation.updated_at else None}


@operation("listAnnotations", "The caller's private layer and the shared layer of a version", tags=TAGS,
           response={"type": "object", "properties": {"annotations": {"type": "array", "items": ANNOTATION_SCHEMA}}})
async def list_annotations(request: web.Request) -> web.Response:
    principal, _, document = await visible_document(request)
    version = document.version(path_int(request, "version"))
    found = await request.app[SERVICES].annotations.visible(document.id, version.version, principal)
    key = author_key(principal)
    return web.json_response({"annotations": [annotation_json(a, a.author_key == key) for a in found]})


@operation("createAnnotation", "Add an annotation to a page of a version", tags=TAGS, status=201,
           request={"type": "object", "required": ["layer", "kind", "page", "data"], "properties": {
               "layer": {"type": "string", "enum": list(LAYERS)},
               "kind": {"type": "string", "enum": ["ink", "highlight", "note", "arrow"]},
               "page": {"type": "integer", "minimum": 1}, "data": {"type": "object"}}},
           response=ANNOTATION_SCHEMA,
           description="The shared layer is for the chair, secretary (presenter); its changes are announced "
           "as annotation.shared {document_id, version, annotation_id}. Private annotations are never announced.")
async def create_annotation(request: web.Request) -> web.Response:
    principal, scope, document = await visible_document(request, Action.ANNOTATE)
    version = document.version(path_int(request, "version"))
    body = await strict_json_body(request)
    unknown = set(body) - {"layer", "kind", "page", "data"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})
    layer = field_str(body, "layer", max_len=16)
    if layer == "shared":
        require(principal, Action.ANNOTATE_SHARED, scope)
    page = body.get("page")
    if isinstance(page, bool) or not isinstance(page, int):
        raise Invalid("page: expected an integer", code="invalid_field", details={"field": "page"})
    version.check_page(page)
    annotation = await request.app[SERVICES].annotations.create(
        meeting_id=document.meeting_id, document_id=document.id, version=version.version, page=page,
        layer=layer, kind=field_str(body, "kind", max_len=16), data=body.get("data"), author=principal)
    return web.json_response(annotation_json(annotation, True), status=201)


async def _own_annotation(request: web.Request) -> tuple[Annotation, int]:
    principal = await current_principal(request)
    services = request.app[SERVICES]
    annotation = await services.annotations.get_own(path_int(request, "annotation_id"), principal)
    document = await services.library.get(annotation.document_id)
    principal, scope = await authorize(request, Action.ANNOTATE, document.meeting_id)
    if annotation.layer == "shared":
        require(principal, Action.ANNOTATE_SHARED, scope)
    if not may_see(document, principal, scope):
        raise Forbidden("the document is no longer visible to you", code="forbidden")
    return annotation, document.meeting_id


@operation("updateAnnotation", "Change one's own annotation", tags=TAGS,
           request={"type": "object", "required": ["data"], "properties": {"data": {"type": "object"}}},
           response=ANNOTATION_SCHEMA)
async def update_annotation(request: web.Request) -> web.Response:
    annotation, meeting_id = await _own_annotation(request)
    body = await strict_json_body(request)
    if set(body) - {"data"}:
        raise Invalid("only data can be changed", code="invalid_field", details={"field": "data"})
    updated = await request.app[SERVICES].annotations.update(meeting_id, annotation, body.get("data"))
    return web.json_response(annotation_json(updated, True))


@operation("deleteAnnotation", "Delete one's own annotation", tags=TAGS, status=204)
async def delete_annotation(request: web.Request) -> web.Response:
    annotation, meeting_id = await _own_annotation(request)
    await request.app[SERVICES].annotations.delete(meeting_id, annotation)
    return web.Response(status=204)


@operation("exportAnnotatedDocument", "The PDF with the chosen layers as real PDF annotations", tags=TAGS,
           query=[("layers", {"type": "string", "default": "private,shared"}, "private, shared or both")],
           response=BINARY, response_content_type="application/pdf",
           description="Ink, highlight, text note and arrow (line) annotations any PDF reader shows; the "
           "original bytes are kept as the first part of the file (incremental update).")
async def export_document(request: web.Request) -> web.StreamResponse:
    principal, _, document = await visible_document(request)
    version = document.version(path_int(request, "version"))
    layers = tuple(v.strip() for v in (query_str(request, "layers") or "private,shared").split(",") if v.strip())
    if not layers or set(layers) - set(LAYERS):
        raise Invalid("layers: private, shared or both", code="invalid_query", details={"param": "layers"})
    services = request.app[SERVICES]
    chosen = await services.annotations.visible(document.id, version.version, principal, layers)
    source = services.files.path_of(version.sha256)
    out = await asyncio.to_thread(export_annotated, source, chosen, services.config.data_path / "exports")
    try:
        data = await asyncio.to_thread(out.read_bytes)
    finally:
        out.unlink(missing_ok=True)
    stem = version.filename.rsplit(".", 1)[0] or "document"
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": _disposition(f"{stem}-ghi-chu.pdf"), "Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/documents/{document_id}/versions/{version}/annotations", list_annotations)
    r.add_post("/api/documents/{document_id}/versions/{version}/annotations", create_annotation)
    r.add_get("/api/documents/{document_id}/versions/{version}/export", export_document)
    r.add_patch("/api/annotations/{annotation_id}", update_annotation)
    r.add_delete("/api/annotations/{annotation_id}", delete_annotation)
