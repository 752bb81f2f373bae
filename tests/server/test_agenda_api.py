"""The agenda over HTTP: items and sub-items, order, publication, the current item."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_documents_api_kit import DocWorld, Events


@pytest.fixture
async def world(api: Api) -> DocWorld:
    return await DocWorld(api).setup()


async def add(world: DocWorld, who: str = "thuky", expect: int = 201, **body: Any) -> dict[str, Any]:
    resp = await world.api.client.post(f"/api/meetings/{world.meeting_id}/agenda", json=body, headers=world.h[who])
    data = await resp.json()
    assert resp.status == expect, data
    return data  # type: ignore[no-any-return]


async def agenda(world: DocWorld, who: str) -> dict[str, Any]:
    resp = await world.get(f"/api/meetings/{world.meeting_id}/agenda", who)
    assert resp.status == 200
    return await resp.json()  # type: ignore[no-any-return]


async def test_secretary_builds_and_publishes_the_agenda(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    async with Events(world) as events:
        first = await add(world, title="Khai mạc", presenter="Đ/c Chủ tịch UBND tỉnh", duration_min=10)
        await events.next("agenda.changed")
    assert first["title"] == "Khai mạc" and first["position"] == 1 and first["children"] == []
    report = await add(world, title="Báo cáo kết quả chuyển đổi số", duration_min=30)
    sub = await add(world, title="Ý kiến các huyện", parent_id=report["id"])
    assert sub["parent_id"] == report["id"]
    early = await add(world, title="Giới thiệu đại biểu", position=1)
    assert early["position"] == 1
    doc = await world.upload(sample_pdfs.agenda, title="Báo cáo", agenda_item_id=str(report["id"]))
    # delegates see nothing until it is published; staff see the draft
    assert (await agenda(world, "daibieu")) == {"items": [], "current_item_id": None, "published": False}
    draft = await agenda(world, "chutri")
    assert [i["title"] for i in draft["items"]] == ["Giới thiệu đại biểu", "Khai mạc", "Báo cáo kết quả chuyển đổi số"]
    client = world.api.client
    resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda/publish", headers=world.h["thuky"])
    assert resp.status == 200
    seen = await agenda(world, "daibieu")
    assert seen["published"] is True
    items = seen["items"]
    assert [i["position"] for i in items] == [1, 2, 3]
    assert items[2]["children"][0]["title"] == "Ý kiến các huyện"
    assert items[2]["documents"] == [{"id": doc["id"], "title": "Báo cáo"}]
    # reorder, edit, current item, delete
    order = [items[2]["id"], items[0]["id"], items[1]["id"]]
    resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda/reorder", json={"item_ids": order},
                             headers=world.h["thuky"])
    assert [i["id"] for i in (await resp.json())["items"]] == order
    resp = await client.patch(f"/api/meetings/{world.meeting_id}/agenda/{first['id']}",
                              json={"title": "Khai mạc hội nghị", "duration_min": None}, headers=world.h["thuky"])
    assert resp.status == 200 and (await resp.json())["duration_min"] is None
    async with Events(world) as events:
        resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda/current", json={"item_id": report["id"]},
                                 headers=world.h["chutri"])
        assert (await events.next("agenda.current")) == {"type": "agenda.current", "item_id": report["id"]}
    assert (await agenda(world, "quansat"))["current_item_id"] == report["id"]
    resp = await client.delete(f"/api/meetings/{world.meeting_id}/agenda/{report['id']}", headers=world.h["thuky"])
    assert resp.status == 204
    after = await agenda(world, "daibieu")
    assert after["current_item_id"] is None and len(after["items"]) == 2
    assert (await world.get(f"/api/documents/{doc['id']}")).status == 200  # the document stays
    log = await world.api.services.audit.list(meeting_id=world.meeting_id)
    assert {"agenda.publish", "document.upload", "agenda.item_delete"} <= {e.action for e in log}


async def test_only_staff_edit_the_agenda(world: DocWorld) -> None:
    for who in ("daibieu", "quansat", "ngoai"):
        body = await add(world, who, expect=403, title="Mục mới")
        assert body["error"]["code"] == "forbidden"
    assert (await world.get(f"/api/meetings/{world.meeting_id}/agenda", "ngoai")).status == 403


@pytest.mark.parametrize("body,field", [
    ({"title": ""}, "title"), ({"title": "x" * 501}, "title"), ({"title": "A", "duration_min": -1}, "duration_min"),
    ({"title": "A", "duration_min": 2000}, "duration_min"), ({"title": "A", "parent_id": 999}, None),
    ({"title": "A", "colour": "red"}, None), ({"title": "A", "position": 0}, "position"),
])
async def test_bad_agenda_items(world: DocWorld, body: dict[str, Any], field: str | None) -> None:
    expect = 404 if body.get("parent_id") else 400
    error = (await add(world, expect=expect, **body))["error"]
    if field:
        assert error["details"]["field"] == field


async def test_sub_items_have_no_sub_items_and_reorder_needs_every_sibling(world: DocWorld) -> None:
    top = await add(world, title="Một")
    other = await add(world, title="Hai")
    child = await add(world, title="Một a", parent_id=top["id"])
    await add(world, expect=400, title="Một a i", parent_id=child["id"])
    client = world.api.client
    resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda/reorder", json={"item_ids": [top["id"]]},
                             headers=world.h["thuky"])
    assert resp.status == 400
    resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda/reorder",
                             json={"item_ids": [other["id"], child["id"]]}, headers=world.h["thuky"])
    assert resp.status == 400
    resp = await client.post(f"/api/meetings/{world.meeting_id}/agenda/publish", headers=world.h["daibieu"])
    assert resp.status == 403
