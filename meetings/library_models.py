"""Value objects of the meeting document library and the per-document access rule
(tài liệu hạn chế: a restricted document is seen only by named roles or bridge points)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .errors import Invalid
from .models import Principal
from .permissions import Action, MeetingScope, allowed
from .text import clean_line

VISIBILITIES = ("all", "restricted")
ROLE_NAMES = frozenset({"admin", "chair", "secretary", "delegate", "observer", "point"})
MAX_FILENAME = 255


@dataclass(frozen=True)
class PageBox:
    """A page's displayed size in PDF points."""

    width_pt: float
    height_pt: float


@dataclass(frozen=True)
class DocumentVersion:
    """One uploaded file of a document; annotations belong to a version."""

    document_id: int
    version: int
    sha256: str
    filename: str
    size_bytes: int
    page_count: int
    pages: tuple[PageBox, ...]
    warnings: tuple[str, ...]
    uploaded_at: datetime
    uploaded_by: str

    def check_page(self, page: int) -> None:
        from .documents import PageNotFound

        if not 1 <= page <= self.page_count:
            raise PageNotFound(f"the document has no page {page}",
                               details={"page": page, "page_count": self.page_count})


@dataclass(frozen=True)
class Document:
    """A meeting document (tài liệu họp) with its versions, oldest first."""

    id: int
    meeting_id: int
    title: str
    agenda_item_id: int | None
    visibility: str
    allowed_roles: tuple[str, ...]
    allowed_points: tuple[str, ...]
    current_version: int
    versions: tuple[DocumentVersion, ...]
    created_at: datetime

    def version(self, number: int) -> DocumentVersion:
        from .errors import NotFound

        for version in self.versions:
            if version.version == number:
                return version
        raise NotFound(f"the document has no version {number}", code="not_found",
                       details={"version": number})

    @property
    def current(self) -> DocumentVersion:
        return self.version(self.current_version)


@dataclass(frozen=True)
class DocumentAccess:
    """Who may see a document: everyone invited, or only the named roles and points."""

    visibility: str = "all"
    allowed_roles: tuple[str, ...] = ()
    allowed_points: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.visibility not in VISIBILITIES:
            raise Invalid("visibility: all or restricted", code="invalid_field",
                          details={"field": "visibility"})
        unknown = set(self.allowed_roles) - ROLE_NAMES
        if unknown:
            raise Invalid(f"allowed_roles: unknown role(s) {', '.join(sorted(unknown))}",
                          code="invalid_field", details={"field": "allowed_roles"})
        if len(self.allowed_points) > 1000 or any(len(c) > 64 for c in self.allowed_points):
            raise Invalid("allowed_points: at most 1000 codes of 64 characters", code="invalid_field",
                          details={"field": "allowed_points"})


def is_document_staff(principal: Principal, scope: MeetingScope | None) -> bool:
    """The meeting's staff (and admins) see and manage every document of it."""
    return allowed(principal, Action.DOCUMENT_UPLOAD, scope)


def may_see(document: Document, principal: Principal, scope: MeetingScope | None) -> bool:
    """The per-document check after ``DOCUMENT_VIEW`` passed for the meeting."""
    if is_document_staff(principal, scope) or document.visibility == "all":
        return True
    subject = principal.role.value if principal.role else ("point" if principal.kind == "point" else "")
    if subject and subject in document.allowed_roles:
        return True
    return principal.point is not None and principal.point.code in document.allowed_points


def safe_filename(name: str | None) -> str:
    """The last path component of a client's file name, without control characters."""
    text = clean_line((name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip().lstrip(".")
    text = "".join(ch for ch in text if ch.isprintable())
    if not text:
        return "document.pdf"
    if len(text) > MAX_FILENAME:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: MAX_FILENAME - 10] + dot + ext[:8]) if dot else text[:MAX_FILENAME]
    return text
