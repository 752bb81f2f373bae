"""Pages of the paperless meeting (phòng họp không giấy): the document viewer, and what the
meeting page needs for its agenda and documents sections.

Like :mod:`server.pages`, these pages only read: the agenda, the documents, the annotations and
the presenter's view are loaded by the ES modules (``agenda.js``, ``documents.js``,
``viewer.js``) through the REST API, which checks access to every document; the WebSocket
brings the live events (``agenda.*``, ``document.*``, ``annotation.shared``, ``presenter.*``).
The viewer page itself refuses an outsider (403) and a document the caller may not see (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from meetings.errors import NotFound
from meetings.library_models import may_see
from meetings.models import Meeting, MeetingState, Principal
from meetings.permissions import Action, MeetingScope, allowed, require

from .api.documents import document_json
from .keys import SERVICES
from .pages import ENV_KEYS, _meeting_id, page, render, require_user

PAGE_LIMIT = 100_000  # a page number beyond any accepted document: refused as not found


@dataclass(frozen=True)
class Paperless:
    """What the meeting page's agenda and documents sections may offer to the caller."""

    meeting_id: int
    can_manage: bool  # edit, reorder, publish the agenda; upload and replace documents
    can_present: bool  # drive the followers' viewers
    can_share: bool  # annotate on the shared layer
    open: bool  # the meeting has not ended

    def data(self) -> dict[str, Any]:
        return {"meeting_id": self.meeting_id, "can_manage": self.can_manage,
                "can_present": self.can_present, "can_share": self.can_share, "open": self.open}


def paperless(principal: Principal | None, meeting: Meeting) -> Paperless:
    """The staff-only rights; they need no invitations, so the scope carries none."""
    scope = MeetingScope(meeting, frozenset())
    return Paperless(
        meeting_id=meeting.id,
        can_manage=allowed(principal, Action.AGENDA_EDIT, scope) and allowed(principal, Action.DOCUMENT_UPLOAD, scope),
        can_present=allowed(principal, Action.PRESENT, scope),
        can_share=allowed(principal, Action.ANNOTATE_SHARED, scope),
        open=meeting.state is not MeetingState.CLOSED,
    )


def _positive(value: str | None, *, code: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not 0 < int(value) <= PAGE_LIMIT:
        raise NotFound("no such page", code=code)
    return int(value)


def viewer_context(meeting: Meeting, document: dict[str, Any], *, principal: Principal,
                   version: int | None, page_number: int | None) -> dict[str, Any]:
    """The viewer page: the document's title for the first paint, the rest comes from REST."""
    rights = paperless(principal, meeting)
    user = principal.user
    return {
        "meeting": meeting,
        "document": document,
        "viewer_data": {
            **rights.data(),
            "document_id": document["id"],
            "version": version,
            "page": page_number or 1,
            "me": {"user_id": user.id if user else None, "label": principal.label,
                   "point_code": principal.point.code if principal.point else None},
        },
    }


async def load_document(request: web.Request, principal: Principal, scope: MeetingScope,
                        document_id: int) -> dict[str, Any]:
    """The document as ``GET /api/documents/{id}`` shows it to ``principal``; NotFound when it
    does not exist, belongs to another meeting, or is restricted away from the caller (the
    same answer, so a restricted document's existence is not revealed)."""
    document = await request.app[SERVICES].library.get(document_id)
    if document.meeting_id != scope.meeting.id or not may_see(document, principal, scope):
        raise NotFound("no such document", code="not_found")
    return document_json(request, document)


@page
async def viewer_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    services = request.app[SERVICES]
    scope = await services.calendar.scope(_meeting_id(request))
    require(principal, Action.MEETING_VIEW, scope)
    try:
        document_id = int(request.match_info["document_id"])
    except ValueError:
        raise NotFound("no such document", code="not_found") from None
    version = _positive(request.query.get("version"), code="not_found")
    page_number = _positive(request.query.get("page"), code="page_not_found")
    document = await load_document(request, principal, scope, document_id)
    context = viewer_context(scope.meeting, document, principal=principal, version=version,
                             page_number=page_number)
    return await render(request, "viewer.html", context, page="viewer")


def setup(app: web.Application) -> None:
    """The viewer route, and ``paperless(principal, meeting)`` for the meeting page's partials."""
    for key in ENV_KEYS.values():
        if key in app:
            app[key].globals["paperless"] = paperless
    app.router.add_get(r"/meetings/{meeting_id:\d+}/documents/{document_id:\d+}", viewer_page)
