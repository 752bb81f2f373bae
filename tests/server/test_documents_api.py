"""Documents over HTTP with real PDFs: upload, pages, access, search, versions, download."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_documents_api_kit import DocWorld, stored_files


@pytest.fixture
async def world(api: Api) -> DocWorld:
    return await DocWorld(api).setup()


async def test_limits_are_shown_before_upload(world: DocWorld) -> None:
    resp = await world.get(f"/api/meetings/{world.meeting_id}/documents/limits")
    assert resp.status == 200
    body = await resp.json()
    assert body["max_pages"] == 2000 and body["max_bytes"] == 100 * 1024 * 1024
    assert body["accepted"] == ["application/pdf"] and body["max_page_pt"] == 14400


async def test_upload_render_and_fetch_pages_once(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda, title="Báo cáo chuyển đổi số")
    assert doc["title"] == "Báo cáo chuyển đổi số" and doc["current_version"] == 1
    version = doc["versions"][0]
    assert version["page_count"] == 6 and version["filename"] == sample_pdfs.agenda.name
    assert version["pages"][0]["width_pt"] > 500 and doc["warnings"] == [] and not version["repaired"]
    url = f"/api/documents/{doc['id']}/versions/1/pages/1/view"
    resp = await world.get(url)
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert resp.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    etag = resp.headers["ETag"]
    assert (await resp.read())[:2] == b"\xff\xd8"
    again = await world.get(url, headers={"If-None-Match": etag})
    assert again.status == 304
    thumb = await world.get(f"/api/documents/{doc['id']}/versions/1/pages/6/thumb")
    assert thumb.status == 200
    done = await world.wait_rendered(doc["id"])
    assert done["versions"][0]["rendered_pages"] == 6
    missing = await world.get(f"/api/documents/{doc['id']}/versions/1/pages/7/view")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "page_not_found"
    zero = await world.get(f"/api/documents/{doc['id']}/versions/1/pages/0/view")
    assert zero.status == 404 and (await zero.json())["error"]["code"] == "page_not_found"
    huge = await world.get(f"/api/documents/{doc['id']}/versions/1/pages/99999999999999999999/view")
    assert huge.status == 404
    kind = await world.get(f"/api/documents/{doc['id']}/versions/1/pages/1/poster")
    assert kind.status == 404


async def test_same_file_twice_is_stored_once(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    first = await world.upload(sample_pdfs.agenda)
    second = await world.upload(sample_pdfs.agenda, title="Bản sao")
    assert first["id"] != second["id"]
    assert first["versions"][0]["sha256"] == second["versions"][0]["sha256"]
    assert len(stored_files(world.api)) == 1


@pytest.mark.parametrize("sample,code", [
    ("png_renamed", "not_pdf"), ("html_renamed", "not_pdf"), ("truncated", None),
    ("encrypted", "encrypted_pdf"), ("ten_thousand_pages", "too_many_pages"),
    ("oversized_page", "page_too_large"), ("empty", "empty_file"),
])
async def test_bad_files_are_refused_and_nothing_is_kept(world: DocWorld, sample_pdfs: SamplePdfs,
                                                         sample: str, code: str | None) -> None:
    path = getattr(sample_pdfs, sample)
    if code is None:  # a truncated file is repaired: accepted, with a warning for the secretary
        doc = await world.upload(path)
        assert doc["warnings"] and "repaired" in doc["warnings"][0] and doc["versions"][0]["repaired"]
        return
    body = await world.upload(path, expect=400)
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert stored_files(world.api) == []
    listing = await (await world.get(f"/api/meetings/{world.meeting_id}/documents", "thuky")).json()
    assert listing["documents"] == []
    # the server is still up and takes a good file
    await world.upload(sample_pdfs.agenda)


async def test_huge_page_and_image_bomb_get_placeholders_not_a_crash(world: DocWorld,
                                                                     sample_pdfs: SamplePdfs) -> None:
    huge = await world.upload(sample_pdfs.huge_page)  # 14400 pt: at the limit, renders narrow
    resp = await world.get(f"/api/documents/{huge['id']}/versions/1/pages/1/view")
    assert resp.status == 200
    bomb = await world.upload(sample_pdfs.image_bomb)
    resp = await world.get(f"/api/documents/{bomb['id']}/versions/1/pages/1/thumb")
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    ok = await world.get(f"/api/meetings/{world.meeting_id}/documents/limits")
    assert ok.status == 200


async def test_path_traversal_and_control_characters_in_the_file_name(world: DocWorld,
                                                                       sample_pdfs: SamplePdfs) -> None:
    resp = await world.raw_upload("../../etc/Kế\x01hoạch\x07.pdf".encode(), sample_pdfs.agenda.read_bytes())
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "malformed_multipart", body
    assert stored_files(world.api) == []
    resp = await world.raw_upload("../../etc/Kế hoạch\u202e.pdf".encode(), sample_pdfs.agenda.read_bytes())
    doc = await resp.json()
    assert resp.status == 201, doc
    assert doc["versions"][0]["filename"] == "Kế hoạch.pdf"
    resp = await world.raw_upload(b"..\\..\\windows\\..", sample_pdfs.agenda.read_bytes())
    name = (await resp.json())["versions"][0]["filename"]
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    resp = await world.raw_upload(b"../..", sample_pdfs.agenda.read_bytes())
    assert (await resp.json())["versions"][0]["filename"] == "document.pdf"
    assert all(p.is_relative_to(world.api.services.files.root) for p in stored_files(world.api))


async def test_only_staff_upload(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    for who in ("daibieu", "quansat", "ngoai"):
        body = await world.upload(sample_pdfs.agenda, who, expect=403)
        assert body["error"]["code"] == "forbidden"
    assert stored_files(world.api) == []


async def test_bad_form_fields(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    body = await world.upload(sample_pdfs.agenda, visibility="secret", expect=400)
    assert body["error"]["code"] == "invalid_field"
    body = await world.upload(sample_pdfs.agenda, agenda_item_id="999", expect=400)
    assert body["error"]["details"]["field"] == "agenda_item_id"
    body = await world.upload(sample_pdfs.agenda, allowed_roles="delegate,king", expect=400)
    assert body["error"]["details"]["field"] == "allowed_roles"
    assert stored_files(world.api) == []
    resp = await world.api.client.post(f"/api/meetings/{world.meeting_id}/documents", json={"file": "x"},
                                       headers=world.h["thuky"])
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_restricted_documents_are_invisible_everywhere(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    open_doc = await world.upload(sample_pdfs.agenda, title="Tài liệu chung")
    secret = await world.upload(sample_pdfs.scanned, title="Tài liệu mật", visibility="restricted",
                                allowed_points="02212", allowed_roles="chair")
    for who, sees in [("daibieu", False), ("quansat", True), ("chutri", True), ("thuky", True)]:
        listing = await (await world.get(f"/api/meetings/{world.meeting_id}/documents", who)).json()
        ids = {d["id"] for d in listing["documents"]}
        assert open_doc["id"] in ids
        assert (secret["id"] in ids) is sees, who
        for url in (f"/api/documents/{secret['id']}", f"/api/documents/{secret['id']}/versions/1/pages/1/view",
                    f"/api/documents/{secret['id']}/versions/1/file",
                    f"/api/documents/{secret['id']}/versions/1/annotations",
                    f"/api/documents/{secret['id']}/versions/1/export"):
            resp = await world.get(url, who)
            assert resp.status == (200 if sees else 404), (who, url)
    outsider = await world.get(f"/api/documents/{open_doc['id']}/versions/1/pages/1/view", "ngoai")
    assert outsider.status == 403


async def test_search_with_and_without_diacritics(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda, title="Báo cáo")
    secret = await world.upload(sample_pdfs.agenda_b if hasattr(sample_pdfs, "agenda_b") else sample_pdfs.repaired
                                if hasattr(sample_pdfs, "repaired") else sample_pdfs.truncated,
                                title="Hạn chế", visibility="restricted", allowed_roles="chair")
    for query in ("chính quyền điện tử", "chinh quyen dien tu", "DONG LAI", "Đông Lai"):
        resp = await world.get(f"/api/meetings/{world.meeting_id}/search", params={"q": query})
        assert resp.status == 200
        hits = (await resp.json())["hits"]
        assert hits, query
        assert {h["document_id"] for h in hits} == {doc["id"]}, query  # never the restricted one
        hit = hits[0]
        start, end = hit["highlight"]
        assert hit["snippet"][start:end].lower().replace("đ", "d") in (
            "chính quyền điện tử", "đông lai", "dông lai", "dong lai") or hit["snippet"][start:end]
        assert hit["page"] >= 1 and hit["title"] == "Báo cáo" and hit["version"] == 1
    staff = await (await world.get(f"/api/meetings/{world.meeting_id}/search", "chutri",
                                   params={"q": "chinh quyen"})).json()
    assert secret["id"] in {h["document_id"] for h in staff["hits"]}
    empty = await (await world.get(f"/api/meetings/{world.meeting_id}/search", params={"q": "không có gì"})).json()
    assert empty["hits"] == []
    long = await world.get(f"/api/meetings/{world.meeting_id}/search", params={"q": "a" * 201})
    assert long.status == 400


async def test_download_with_range(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    url = f"/api/documents/{doc['id']}/versions/1/file"
    whole = await (await world.get(url)).read()
    assert whole == sample_pdfs.agenda.read_bytes()
    part = await world.get(url, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == whole[100:200]


async def test_delete_document_is_staff_only_and_audited(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    client = world.api.client
    resp = await client.delete(f"/api/documents/{doc['id']}", headers=world.h["daibieu"])
    assert resp.status == 403
    resp = await client.delete(f"/api/documents/{doc['id']}", headers=world.h["thuky"])
    assert resp.status == 204
    assert (await world.get(f"/api/documents/{doc['id']}")).status == 404
    actions = [e.action for e in await world.api.services.audit.list(meeting_id=world.meeting_id)]
    assert actions[:2] == ["document.delete", "document.upload"]


async def test_update_document_title_item_and_visibility(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    client = world.api.client
    resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda", json={"title": "Báo cáo"},
                             headers=world.h["thuky"])
    item = await resp.json()
    url = f"/api/documents/{doc['id']}"
    resp = await client.patch(url, json={"title": "Báo cáo (bản sửa)", "agenda_item_id": item["id"],
                                         "visibility": "restricted", "allowed_points": ["075"]},
                              headers=world.h["thuky"])
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["title"], body["agenda_item_id"], body["allowed_points"]) == ("Báo cáo (bản sửa)", item["id"], ["075"])
    assert (await world.get(url, "daibieu")).status == 200  # at point 075
    assert (await world.get(url, "quansat")).status == 404
    for patch, who, status in [({"title": "x"}, "daibieu", 403), ({"agenda_item_id": 999}, "thuky", 400),
                               ({"visibility": "secret"}, "thuky", 400), ({"owner": "x"}, "thuky", 400),
                               ({"agenda_item_id": None, "visibility": "all"}, "thuky", 200)]:
        resp = await client.patch(url, json=patch, headers=world.h[who])
        assert resp.status == status, (patch, await resp.text())
    assert (await world.get(url, "quansat")).status == 200
