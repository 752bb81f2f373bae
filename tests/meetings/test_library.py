"""Unit tests of the document library: access rule, file names, limits from config, search
folding, duplicate uploads and refusals leaving nothing behind (real PDFs, real worker pool)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meetings.calendar import MeetingDraft
from meetings.documents import DocumentLimits, EncryptedPdf
from meetings.errors import Invalid
from meetings.library import DocumentDraft
from meetings.library_models import Document, DocumentAccess, may_see, safe_filename
from meetings.library_search import search_meeting
from meetings.models import BridgePoint, Meeting, MeetingState, PointLevel, Principal, Role, User
from meetings.permissions import MeetingScope
from server.config import Config
from server.services import Services, document_limits
from tests.conftest import make_config
from tests.data.make_pdfs import SamplePdfs

NOW = datetime(2026, 11, 21, tzinfo=UTC)
MEETING = Meeting(1, "Họp", "", NOW, None, MeetingState.SCHEDULED, 1, 10, 11, 10, NOW, None, None)
SCOPE = MeetingScope(MEETING, frozenset({2, 3}))


def person(uid: int, role: Role, point: BridgePoint | None = None) -> Principal:
    return Principal("user", user=User(uid, f"u{uid}", f"U{uid}", role, False, NOW, point.id if point else None),
                     point=point)


def point(pid: int, code: str) -> BridgePoint:
    return BridgePoint(pid, code, f"Điểm {code}", PointLevel.COMMUNE, None, True, NOW)


def document(visibility: str, roles: tuple[str, ...] = (), points: tuple[str, ...] = ()) -> Document:
    return Document(1, 1, "Tài liệu", None, visibility, roles, points, 1, (), NOW)


def test_restricted_documents_are_seen_by_named_roles_points_and_staff() -> None:
    secret = document("restricted", ("observer",), ("02212",))
    chair, secretary = person(10, Role.CHAIR), person(11, Role.SECRETARY)
    delegate_a = person(20, Role.DELEGATE, point(2, "075"))
    delegate_b = person(21, Role.DELEGATE, point(3, "02212"))
    observer = person(22, Role.OBSERVER, point(2, "075"))
    device = Principal("point", point=point(3, "02212"))
    assert may_see(secret, chair, SCOPE) and may_see(secret, secretary, SCOPE)
    assert not may_see(secret, delegate_a, SCOPE)
    assert may_see(secret, delegate_b, SCOPE) and may_see(secret, observer, SCOPE) and may_see(secret, device, SCOPE)
    assert may_see(document("all"), delegate_a, SCOPE)
    other_chair = person(30, Role.CHAIR)
    assert not may_see(secret, other_chair, SCOPE)  # a chair of another meeting is no staff here


def test_access_values_are_checked() -> None:
    with pytest.raises(Invalid):
        DocumentAccess("secret")
    with pytest.raises(Invalid):
        DocumentAccess("restricted", ("king",))
    assert DocumentAccess("restricted", ("point", "delegate"), ("02212",)).allowed_points == ("02212",)


@pytest.mark.parametrize("given,expected", [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\a\\Báo cáo.pdf", "Báo cáo.pdf"), ("..", "document.pdf"),
    ("", "document.pdf"), (None, "document.pdf"), ("a\x00b\x1f.pdf", "ab.pdf"), (".hidden.pdf", "hidden.pdf"),
    ("x" * 300 + ".pdf", "x" * 245 + ".pdf"), ("Tờ trình\u202e.pdf", "Tờ trình.pdf"),
])
def test_safe_filename(given: str | None, expected: str) -> None:
    assert safe_filename(given) == expected


def test_limits_come_from_the_config_section(tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"documents.max_pages": 50, "documents.max_bytes": 1000,
                                      "documents.view_width_px": 1600, "documents.worker_memory_mb": 512})
    limits = document_limits(config)
    assert (limits.max_pages, limits.max_bytes, limits.view_width_px) == (50, 1000, 1600)
    assert limits.worker_memory_bytes == 512 * 1024 * 1024 and limits.max_pixels >= 1600 ** 2
    with pytest.raises(ValueError):
        document_limits(make_config(tmp_path, **{"documents.thumb_width_px": 2000}))
    assert DocumentLimits().max_page_pt == 14400


@pytest.fixture
async def services(tmp_path: Path) -> Services:
    config: Config = make_config(tmp_path, **{"documents.workers": 1})
    svc = await Services.start(config)
    yield svc  # type: ignore[misc]
    await svc.close()


async def _meeting(services: Services) -> int:
    meeting = await services.calendar.create(MeetingDraft("Họp", NOW), created_by=None)
    return meeting.id


async def test_refused_upload_leaves_nothing_and_a_repeat_is_processed_once(
        services: Services, sample_pdfs: SamplePdfs) -> None:
    meeting_id = await _meeting(services)
    stored = services.files.put_bytes(sample_pdfs.encrypted.read_bytes())
    with pytest.raises(EncryptedPdf):
        await services.library.add(meeting_id, stored, "x.pdf", DocumentDraft("Mật"), None)
    assert not services.files.exists(stored.sha256)
    first = services.files.put_bytes(sample_pdfs.agenda.read_bytes())
    doc = await services.library.add(meeting_id, first, "a.pdf", DocumentDraft(""), None)
    assert doc.title == "a" and doc.current.page_count == 6
    jobs = services.renderer.stats().page_jobs
    again = services.files.put_bytes(sample_pdfs.agenda.read_bytes())
    assert again.created is False
    await services.library.add(meeting_id, again, "b.pdf", DocumentDraft("Bản 2"), None)
    await services.library.close()  # wait for nothing: background work is owned and cancellable
    hits = await search_meeting(services.db, meeting_id, "chinh quyen dien tu", document_ids=[doc.id])
    assert hits and hits[0].document_id == doc.id
    start, end = hits[0].highlight
    assert hits[0].snippet[start:end].lower() == "chính quyền điện tử"
    assert services.renderer.stats().page_jobs - jobs <= 12  # the copy adds no text job and no re-render
