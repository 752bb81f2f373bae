"""The agenda of a meeting (chương trình họp): items, order, publication, the current item."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meetings.agenda import Agenda, AgendaItem, AgendaItemDraft
from meetings.errors import Invalid, NotFound
from meetings.library_models import is_document_staff, may_see
from meetings.permissions import Action

from ..auth import authorize
from ..keys import SERVICES
from ..openapi import operation
from .body import field_str, path_int
from .params import strict_json_body

TAGS = ["agenda"]
ITEM_FIELDS = {"title", "presenter", "duration_min", "parent_id", "position"}

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "position", "title", "presenter", "duration_min", "parent_id", "children", "documents"],
    "properties": {
        "id": {"type": "integer"}, "position": {"type": "integer"}, "title": {"type": "string"},
        "presenter": {"type": "string"}, "duration_min": {"type": "integer", "nullable": True},
        "parent_id": {"type": "integer", "nullable": True},
        "children": {"type": "array", "items": {"type": "object"}},
        "documents": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "title": {"type": "string"}}}},
    },
}
AGENDA_SCHEMA = {"type": "object", "properties": {
    "items": {"type": "array", "items": ITEM_SCHEMA},
    "current_item_id": {"type": "integer", "nullable": True}, "published": {"type": "boolean"}}}
CREATE_SCHEMA: dict[str, Any] = {"type": "object", "required": ["title"], "properties": {
    "title": {"type": "string", "maxLength": 500}, "presenter": {"type": "string", "maxLength": 255},
    "duration_min": {"type": "integer", "minimum": 0, "maximum": 1440, "nullable": True},
    "parent_id": {"type": "integer", "nullable": True}, "position": {"type": "integer", "minimum": 1}}}


def _opt_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name}: expected an integer", code="invalid_field", details={"field": name})
    if not 0 <= value < 2**31:
        raise Invalid(f"{name}: out of range", code="invalid_field", details={"field": name})
    return value


def _reject_unknown(body: dict[str, Any], known: set[str]) -> None:
    unknown = set(body) - known
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})


def item_json(item: AgendaItem, agenda: Agenda, docs: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "id": item.id, "position": item.position, "title": item.title, "presenter": item.presenter,
        "duration_min": item.duration_min, "parent_id": item.parent_id,
        "children": [item_json(child, agenda, docs) for child in agenda.children_of(item.id)],
        "documents": docs.get(item.id, []),
    }


async def _agenda_json(request: web.Request, meeting_id: int) -> dict[str, Any]:
    principal, scope = await authorize(request, Action.AGENDA_VIEW, meeting_id)
    services = request.app[SERVICES]
    agenda = await services.agenda.get(meeting_id)
    if not agenda.published and not is_document_staff(principal, scope):
        return {"items": [], "current_item_id": None, "published": False}
    docs: dict[int, list[dict[str, Any]]] = {}
    for document in await services.library.list(meeting_id):
        if document.agenda_item_id is not None and may_see(document, principal, scope):
            docs.setdefault(document.agenda_item_id, []).append({"id": document.id, "title": document.title})
    return {"items": [item_json(item, agenda, docs) for item in agenda.children_of(None)],
            "current_item_id": agenda.current_item_id, "published": agenda.published}


@operation("listAgenda", "The agenda: items with sub-items and their documents", tags=TAGS,
           response=AGENDA_SCHEMA,
           description="Delegates see only a published agenda (an empty draft otherwise); staff see drafts.")
async def list_agenda(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    return web.json_response(await _agenda_json(request, meeting_id))


async def _item_response(request: web.Request, meeting_id: int, item_id: int, status: int = 200) -> web.Response:
    body = await _agenda_json(request, meeting_id)

    def find(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        for item in items:
            if item["id"] == item_id:
                return item
            found = find(item["children"])
            if found:
                return found
        return None

    item = find(body["items"])
    if item is None:
        raise NotFound("no such agenda item", code="not_found")
    return web.json_response(item, status=status)


@operation("createAgendaItem", "Add an agenda item (or a sub-item)", tags=TAGS, status=201,
           request=CREATE_SCHEMA, response=ITEM_SCHEMA, description="Event: agenda.changed.")
async def create_item(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.AGENDA_EDIT, meeting_id)
    body = await strict_json_body(request)
    _reject_unknown(body, ITEM_FIELDS)
    draft = AgendaItemDraft(
        title=field_str(body, "title", max_len=2000), presenter=field_str(body, "presenter", required=False,
                                                                          max_len=2000),
        duration_min=_opt_int(body, "duration_min"), parent_id=_opt_int(body, "parent_id"),
        position=_opt_int(body, "position"))
    item = await request.app[SERVICES].agenda.create(meeting_id, draft, principal)
    return await _item_response(request, meeting_id, item.id, status=201)


@operation("updateAgendaItem", "Change an agenda item's title, presenter or duration", tags=TAGS,
           request={"type": "object", "properties": {k: v for k, v in CREATE_SCHEMA["properties"].items()
                                                     if k in ("title", "presenter", "duration_min")}},
           response=ITEM_SCHEMA)
async def update_item(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    item_id = path_int(request, "item_id")
    await authorize(request, Action.AGENDA_EDIT, meeting_id)
    body = await strict_json_body(request)
    _reject_unknown(body, {"title", "presenter", "duration_min"})
    await request.app[SERVICES].agenda.update(
        meeting_id, item_id,
        title=field_str(body, "title", max_len=2000) if "title" in body else None,
        presenter=field_str(body, "presenter", max_len=2000) if "presenter" in body else None,
        duration_min=_opt_int(body, "duration_min"),
        clear_duration="duration_min" in body and body["duration_min"] is None)
    return await _item_response(request, meeting_id, item_id)


@operation("deleteAgendaItem", "Remove an agenda item and its sub-items", tags=TAGS, status=204)
async def delete_item(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    item_id = path_int(request, "item_id")
    principal, _ = await authorize(request, Action.AGENDA_EDIT, meeting_id)
    await request.app[SERVICES].agenda.delete(meeting_id, item_id, principal)
    return web.Response(status=204)


@operation("reorderAgenda", "Put the items of one level in a new order", tags=TAGS,
           request={"type": "object", "required": ["item_ids"], "properties": {
               "item_ids": {"type": "array", "items": {"type": "integer"}}}}, response=AGENDA_SCHEMA)
async def reorder(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.AGENDA_EDIT, meeting_id)
    body = await strict_json_body(request)
    _reject_unknown(body, {"item_ids"})
    ids = body.get("item_ids")
    if not isinstance(ids, list) or len(ids) > 500 or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in ids):
        raise Invalid("item_ids: a list of item ids", code="invalid_field", details={"field": "item_ids"})
    await request.app[SERVICES].agenda.reorder(meeting_id, ids)
    return web.json_response(await _agenda_json(request, meeting_id))


@operation("publishAgenda", "Publish the agenda to the invited points", tags=TAGS, response=AGENDA_SCHEMA)
async def publish(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    principal, _ = await authorize(request, Action.AGENDA_EDIT, meeting_id)
    await request.app[SERVICES].agenda.publish(meeting_id, principal)
    return web.json_response(await _agenda_json(request, meeting_id))


@operation("setCurrentAgendaItem", "Mark the item under way (null: none)", tags=TAGS,
           request={"type": "object", "properties": {"item_id": {"type": "integer", "nullable": True}}},
           response=AGENDA_SCHEMA, description="Event: agenda.current {item_id}.")
async def set_current(request: web.Request) -> web.Response:
    meeting_id = path_int(request, "meeting_id")
    await authorize(request, Action.AGENDA_EDIT, meeting_id)
    body = await strict_json_body(request)
    _reject_unknown(body, {"item_id"})
    await request.app[SERVICES].agenda.set_current(meeting_id, _opt_int(body, "item_id"))
    return web.json_response(await _agenda_json(request, meeting_id))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/meetings/{meeting_id}/agenda", list_agenda)
    r.add_post("/api/meetings/{meeting_id}/agenda", create_item)
    r.add_post("/api/meetings/{meeting_id}/agenda/reorder", reorder)
    r.add_post("/api/meetings/{meeting_id}/agenda/publish", publish)
    r.add_post("/api/meetings/{meeting_id}/agenda/current", set_current)
    r.add_patch("/api/meetings/{meeting_id}/agenda/{item_id}", update_item)
    r.add_delete("/api/meetings/{meeting_id}/agenda/{item_id}", delete_item)
