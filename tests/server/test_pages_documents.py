"""The paperless pages over a real loopback server: the viewer page for participants, 403 for an
outsider, restricted documents hidden, Vietnamese and English; the meeting page's sections."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest
from yarl import URL

from meetings.calendar import MeetingDraft
from meetings.clock import utcnow
from server.pages_documents import paperless
from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_pages import World, world  # noqa: F401  (the fixture)


async def upload(world: World, pdf: bytes, *, meeting_id: int | None = None, **fields: str) -> dict[str, Any]:  # noqa: F811
    form = aiohttp.FormData()
    form.add_field("file", pdf, filename="bao-cao.pdf", content_type="application/pdf")
    for name, value in fields.items():
        form.add_field(name, value)
    world.api.client.session.cookie_jar.clear()
    resp = await world.api.client.post(f"/api/meetings/{meeting_id or world.meeting_id}/documents", data=form,
                                       headers=Api.bearer(world.tokens["secretary"]))
    body = await resp.json()
    assert resp.status == 201, body
    return body  # type: ignore[no-any-return]


def viewer_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', html, re.DOTALL)
    assert found, "no viewer data"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


@pytest.fixture
async def documents(world: World, sample_pdfs: SamplePdfs) -> dict[str, dict[str, Any]]:  # noqa: F811
    pdf = sample_pdfs.agenda.read_bytes()
    public = await upload(world, pdf, title="Báo cáo <b>chuyển đổi số</b> & kế hoạch")
    restricted = await upload(world, pdf, title="Tài liệu mật của huyện", visibility="restricted",
                              allowed_points="X170102")
    return {"public": public, "restricted": restricted}


async def test_viewer_renders_for_a_participant_in_vietnamese(world: World, documents: dict[str, Any]) -> None:  # noqa: F811
    doc = documents["public"]
    status, html, resp = await world.get(f"/meetings/{world.meeting_id}/documents/{doc['id']}?page=3", "delegate")
    assert status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert "script-src 'self' 'nonce-" in resp.headers["Content-Security-Policy"]
    assert '<html lang="vi">' in html
    # The title is escaped, never markup.
    assert "Báo cáo &lt;b&gt;chuyển đổi số&lt;/b&gt; &amp; kế hoạch" in html
    assert "<b>chuyển đổi số</b>" not in html
    assert "Theo người trình bày" in html and "Tải về kèm ghi chú của tôi" in html
    assert "Tìm trong tài liệu" in html and "Ghi chú trên trang này" in html
    data = viewer_data(html)
    assert data["document_id"] == doc["id"] and data["meeting_id"] == world.meeting_id
    assert data["page"] == 3 and data["version"] is None
    assert data["can_present"] is False and data["can_share"] is False
    # A delegate writes private notes only; no presenter controls.
    assert 'value="shared"' not in html and 'id="present-btn"' not in html
    assert "/static/js/viewer.js?v=" in html and "/static/css/viewer.css?v=" in html


async def test_staff_get_presenter_and_shared_layer(world: World, documents: dict[str, Any]) -> None:  # noqa: F811
    doc = documents["restricted"]
    for role in ("secretary", "chair", "admin"):
        status, html, _ = await world.get(f"/meetings/{world.meeting_id}/documents/{doc['id']}?version=1", role)
        assert status == 200, role
        data = viewer_data(html)
        assert data["can_present"] is True and data["can_share"] is True and data["version"] == 1
        assert 'id="present-btn"' in html and 'value="shared"' in html
        assert "Tài liệu mật của huyện" in html


async def test_outsiders_and_strangers_are_refused(world: World, documents: dict[str, Any]) -> None:  # noqa: F811
    path = f"/meetings/{world.meeting_id}/documents/{documents['public']['id']}"
    status, html, _ = await world.get(path, "observer")  # not staff, no invited point
    assert status == 403 and "Không có quyền truy cập" in html
    status, _, resp = await world.get(path)
    assert status == 302 and URL(resp.headers["Location"]).query["next"] == path
    status, _, _ = await world.get(f"/meetings/{world.meeting_id}/documents/999999", "delegate")
    assert status == 404
    status, _, _ = await world.get(f"{path}?page=abc", "delegate")
    assert status == 404


async def test_restricted_document_is_hidden(world: World, documents: dict[str, Any]) -> None:  # noqa: F811
    secret = documents["restricted"]
    path = f"/meetings/{world.meeting_id}/documents/{secret['id']}"
    status, html, _ = await world.get(path, "delegate")  # X170101, not among the allowed points
    assert status == 404
    assert "Tài liệu mật của huyện" not in html
    # The meeting page names no document: the list comes from the REST API, filtered per caller.
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}", "delegate")
    assert status == 200 and "Tài liệu mật của huyện" not in html


async def test_document_of_another_meeting_is_not_found(world: World, documents: dict[str, Any]) -> None:  # noqa: F811
    other = await world.api.services.calendar.create(MeetingDraft(
        title="Họp khác", starts_at=utcnow(), host_point_code="T17", chair_username="chair",
        secretary_username="secretary"), created_by=None)
    status, _, _ = await world.get(f"/meetings/{other.id}/documents/{documents['public']['id']}", "secretary")
    assert status == 404


async def test_viewer_in_english(world: World, documents: dict[str, Any]) -> None:  # noqa: F811
    path = f"/meetings/{world.meeting_id}/documents/{documents['public']['id']}?lang=en"
    status, html, _ = await world.get(path, "secretary")
    assert status == 200 and '<html lang="en">' in html
    for text in ("Follow the presenter", "Download with my notes", "Present to everyone", "Notes on this page",
                 "Shared (everyone)"):
        assert text in html, text
    assert "Theo người trình bày" not in html


async def test_meeting_page_has_agenda_and_documents(world: World) -> None:  # noqa: F811
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}", "secretary")
    assert status == 200
    assert 'id="agenda-section"' in html and 'id="documents-section"' in html
    assert 'id="upload-form"' in html and 'id="agenda-form"' in html
    assert f'href="/api/meetings/{world.meeting_id}/pack"' in html
    assert "Tải trọn bộ tài liệu" in html and "Chương trình họp" in html
    assert "/static/js/documents.js?v=" in html
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}", "delegate")
    assert status == 200 and 'id="documents-section"' in html
    assert 'id="upload-form"' not in html and 'id="agenda-form"' not in html
    found = re.search(r'id="paperless-data">(.*?)</script>', html, re.DOTALL)
    assert found and json.loads(found.group(1))["can_manage"] is False


async def test_paperless_rights(world: World) -> None:  # noqa: F811
    from meetings.models import Principal

    meeting = await world.api.services.calendar.get(world.meeting_id)
    assert paperless(None, meeting).can_manage is False
    secretary = await world.api.services.accounts.by_username("secretary")
    delegate = await world.api.services.accounts.by_username("delegate")
    assert secretary is not None and delegate is not None
    rights = paperless(Principal(kind="user", user=secretary), meeting)
    assert rights.can_manage and rights.can_present and rights.can_share and rights.open
    rights = paperless(Principal(kind="user", user=delegate), meeting)
    assert not (rights.can_manage or rights.can_present or rights.can_share)
