"""Annotations over HTTP: layers, shapes, author-only edits, live events, and the annotated
export read back with an independent library (pypdf)."""

from __future__ import annotations

import io
from typing import Any

import pypdf
import pytest

from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_documents_api_kit import DocWorld, Events

INK = {"strokes": [[[0.1, 0.1], [0.2, 0.15], [0.3, 0.1]]], "color": "#1565c0", "width": 3}
HIGHLIGHT = {"rect": [0.1, 0.3, 0.6, 0.34], "color": "#ffeb3b"}
NOTE = {"at": [0.5, 0.5], "text": "Đề nghị làm rõ số liệu điểm cầu cấp xã"}
ARROW = {"from": [0.2, 0.8], "to": [0.4, 0.7], "color": "#d32f2f", "width": 2}


@pytest.fixture
async def world(api: Api) -> DocWorld:
    return await DocWorld(api).setup()


async def annotate(world: DocWorld, doc: dict[str, Any], who: str, *, expect: int = 201, version: int = 1,
                   **body: Any) -> dict[str, Any]:
    resp = await world.api.client.post(f"/api/documents/{doc['id']}/versions/{version}/annotations",
                                       json=body, headers=world.h[who])
    data = await resp.json()
    assert resp.status == expect, data
    return data  # type: ignore[no-any-return]


async def listed(world: DocWorld, doc: dict[str, Any], who: str, version: int = 1) -> list[dict[str, Any]]:
    resp = await world.get(f"/api/documents/{doc['id']}/versions/{version}/annotations", who)
    assert resp.status == 200
    return (await resp.json())["annotations"]  # type: ignore[no-any-return]


async def test_layers_are_private_or_shared(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    mine = await annotate(world, doc, "daibieu", layer="private", kind="ink", page=1, data=INK)
    assert mine["data"]["strokes"] == INK["strokes"] and mine["mine"] is True
    await annotate(world, doc, "daibieu2", layer="private", kind="note", page=2, data=NOTE)
    shared = await annotate(world, doc, "thuky", layer="shared", kind="highlight", page=1, data=HIGHLIGHT)
    assert {a["id"] for a in await listed(world, doc, "daibieu")} == {mine["id"], shared["id"]}
    assert {a["kind"] for a in await listed(world, doc, "daibieu2")} == {"note", "highlight"}
    assert [a["id"] for a in await listed(world, doc, "chutri")] == [shared["id"]]
    body = await annotate(world, doc, "daibieu", expect=403, layer="shared", kind="arrow", page=1, data=ARROW)
    assert body["error"]["code"] == "forbidden"


async def test_only_the_author_edits_or_deletes(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    mine = await annotate(world, doc, "daibieu", layer="private", kind="highlight", page=1, data=HIGHLIGHT)
    shared = await annotate(world, doc, "thuky", layer="shared", kind="arrow", page=1, data=ARROW)
    client = world.api.client
    resp = await client.patch(f"/api/annotations/{mine['id']}", json={"data": NOTE}, headers=world.h["daibieu2"])
    assert resp.status == 404  # someone else's private layer does not exist for them
    resp = await client.delete(f"/api/annotations/{shared['id']}", headers=world.h["daibieu"])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await client.delete(f"/api/annotations/{shared['id']}", headers=world.h["chutri"])
    assert resp.status == 403
    moved = {"rect": [0.2, 0.2, 0.3, 0.3], "color": "#00ff00"}
    resp = await client.patch(f"/api/annotations/{mine['id']}", json={"data": moved}, headers=world.h["daibieu"])
    assert resp.status == 200 and (await resp.json())["data"]["rect"] == [0.2, 0.2, 0.3, 0.3]
    resp = await client.delete(f"/api/annotations/{mine['id']}", headers=world.h["daibieu"])
    assert resp.status == 204
    assert [a["id"] for a in await listed(world, doc, "daibieu")] == [shared["id"]]


@pytest.mark.parametrize("body,field", [
    ({"layer": "private", "kind": "ink", "page": 99, "data": INK}, None),
    ({"layer": "private", "kind": "ink", "page": 1, "data": {"strokes": [[[1.5, 0.1]]]}}, "data.strokes"),
    ({"layer": "private", "kind": "highlight", "page": 1, "data": {"rect": [0.1, 0.1, 0.1, 0.5]}}, "data.rect"),
    ({"layer": "private", "kind": "note", "page": 1, "data": {"at": [0.1, 0.1], "text": " "}}, "data.text"),
    ({"layer": "private", "kind": "arrow", "page": 1, "data": {"from": [0.1, 0.1], "to": [0.1, 0.1]}}, "data.to"),
    ({"layer": "private", "kind": "ink", "page": 1, "data": {**INK, "color": "red"}}, "data.color"),
    ({"layer": "public", "kind": "ink", "page": 1, "data": INK}, "layer"),
    ({"layer": "private", "kind": "circle", "page": 1, "data": INK}, "kind"),
    ({"layer": "private", "kind": "ink", "page": "1", "data": INK}, "page"),
])
async def test_bad_annotations_are_refused(world: DocWorld, sample_pdfs: SamplePdfs, body: dict[str, Any],
                                           field: str | None) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    error = (await annotate(world, doc, "daibieu", expect=404 if field is None else 400, **body))["error"]
    if field is None:
        assert error["code"] == "page_not_found"
    else:
        assert error["details"]["field"] == field
    assert await listed(world, doc, "daibieu") == []


async def test_shared_annotations_are_announced_private_ones_never(world: DocWorld,
                                                                   sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    async with Events(world) as events:
        await annotate(world, doc, "daibieu", layer="private", kind="note", page=1, data=NOTE)
        shared = await annotate(world, doc, "thuky", layer="shared", kind="ink", page=1, data=INK)
        await events.next("annotation.shared")
        seen = events.seen
    assert seen[-1] == {"type": "annotation.shared", "document_id": doc["id"], "version": 1,
                        "annotation_id": shared["id"]}
    assert not any("Đề nghị" in str(e) for e in seen)


async def test_export_holds_real_pdf_annotations(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    await annotate(world, doc, "daibieu", layer="private", kind="ink", page=1, data=INK)
    await annotate(world, doc, "daibieu", layer="private", kind="highlight", page=1, data=HIGHLIGHT)
    await annotate(world, doc, "daibieu", layer="private", kind="note", page=2, data=NOTE)
    await annotate(world, doc, "thuky", layer="shared", kind="arrow", page=3, data=ARROW)
    await annotate(world, doc, "daibieu2", layer="private", kind="note", page=1,
                   data={"at": [0.1, 0.1], "text": "của người khác"})

    async def export(layers: str) -> pypdf.PdfReader:
        resp = await world.get(f"/api/documents/{doc['id']}/versions/1/export", "daibieu", params={"layers": layers})
        assert resp.status == 200 and resp.content_type == "application/pdf"
        data = await resp.read()
        assert data.startswith(sample_pdfs.agenda.read_bytes())  # the original, untouched
        return pypdf.PdfReader(io.BytesIO(data))

    def annots(reader: pypdf.PdfReader) -> list[tuple[int, str, Any]]:
        out = []
        for number, page in enumerate(reader.pages, start=1):
            for ref in page.get("/Annots") or []:
                annot = ref.get_object()
                if annot["/Subtype"] != "/Popup":
                    out.append((number, str(annot["/Subtype"]), annot))
        return out

    both = annots(await export("private,shared"))
    assert sorted((n, s) for n, s, _ in both) == [(1, "/Highlight"), (1, "/Ink"), (2, "/Text"), (3, "/Line")]
    note = next(a for _, s, a in both if s == "/Text")
    assert note["/Contents"] == NOTE["text"]
    ink = next(a for _, s, a in both if s == "/Ink")
    page_height = float(pypdf.PdfReader(sample_pdfs.agenda).pages[0].mediabox.height)
    first_x, first_y = float(ink["/InkList"][0][0]), float(ink["/InkList"][0][1])
    assert abs(first_x - 0.1 * 595.28) < 2 and abs(first_y - 0.9 * page_height) < 2  # PDF origin bottom-left
    line = next(a for _, s, a in both if s == "/Line")
    assert "/ClosedArrow" in [str(v) for v in line["/LE"]]
    assert [(n, s) for n, s, _ in annots(await export("shared"))] == [(3, "/Line")]
    bad = await world.get(f"/api/documents/{doc['id']}/versions/1/export", "daibieu", params={"layers": "all"})
    assert bad.status == 400


async def test_annotations_stay_on_their_version(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    old = await annotate(world, doc, "daibieu", layer="private", kind="ink", page=1, data=INK)
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", sample_pdfs.scanned.read_bytes(), filename="v2.pdf", content_type="application/pdf")
    async with Events(world) as events:
        resp = await world.api.client.post(f"/api/documents/{doc['id']}/versions", data=form, headers=world.h["thuky"])
        updated = await resp.json()
        assert resp.status == 201, updated
        event = await events.next("document.version")
    assert event == {"type": "document.version", "document_id": doc["id"], "version": 2}
    assert updated["current_version"] == 2 and [v["version"] for v in updated["versions"]] == [1, 2]
    assert await listed(world, doc, "daibieu", version=2) == []
    assert [a["id"] for a in await listed(world, doc, "daibieu", version=1)] == [old["id"]]
    assert (await world.get(f"/api/documents/{doc['id']}/versions/1/pages/1/thumb")).status == 200
    bad = aiohttp.FormData()
    bad.add_field("file", b"not a pdf", filename="x.pdf")
    resp = await world.api.client.post(f"/api/documents/{doc['id']}/versions", data=bad, headers=world.h["daibieu"])
    assert resp.status == 403
