"""Live document events reach joined WebSocket sessions; private annotations never do."""

from __future__ import annotations

import json

import aiohttp

from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_ws_kit import build_scene


async def test_live_events_over_the_websocket(api: Api, sample_pdfs: SamplePdfs) -> None:
    scene = await build_scene(api)
    delegate, _ = await scene.joined_peer(scene.delegate, "delegate")
    chair = {"Authorization": f"Bearer {scene.chair}"}
    form = aiohttp.FormData()
    form.add_field("title", "Báo cáo giao ban")
    form.add_field("file", sample_pdfs.agenda.read_bytes(), filename="bao-cao.pdf", content_type="application/pdf")
    resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/documents", data=form, headers=chair)
    doc = await resp.json()
    assert resp.status == 201, doc
    ready = await delegate.expect("event", timeout=60, topic=f"meeting.{scene.meeting_id}")
    while ready["event"]["type"] != "document.ready":
        ready = await delegate.expect("event", timeout=60)
    assert ready["event"] == {"type": "document.ready", "document_id": doc["id"], "version": 1}

    base = f"/api/documents/{doc['id']}/versions/1/annotations"
    note = {"layer": "private", "kind": "note", "page": 1, "data": {"at": [0.2, 0.2], "text": "Bí mật riêng"}}
    resp = await api.client.post(base, json=note, headers={"Authorization": f"Bearer {scene.delegate}"})
    assert resp.status == 201
    resp = await api.client.post(base, json={"layer": "shared", "kind": "highlight", "page": 2,
                                             "data": {"rect": [0.1, 0.1, 0.5, 0.2]}}, headers=chair)
    shared = await resp.json()
    event = await delegate.expect("event", timeout=10)
    assert event["event"] == {"type": "annotation.shared", "document_id": doc["id"], "version": 1,
                              "annotation_id": shared["id"]}
    resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/presenter",
                                 json={"document_id": doc["id"], "version": 1, "page": 2}, headers=chair)
    assert resp.status == 200
    view = await delegate.expect("event", timeout=10)
    assert view["event"]["type"] == "presenter.view" and view["event"]["page"] == 2
    await delegate.silent(0.3)
    assert "Bí mật" not in json.dumps(view)
    await delegate.close()
