"""Presenter follow over HTTP: the view is meeting state; who does not follow is shown."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_documents_api_kit import DocWorld, Events


@pytest.fixture
async def world(api: Api) -> DocWorld:
    return await DocWorld(api).setup()


async def test_followers_move_with_the_presenter(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    url = f"/api/meetings/{world.meeting_id}/presenter"
    empty = await (await world.get(url)).json()
    assert empty["presenter"] is None and empty["page"] is None
    client = world.api.client
    async with Events(world) as events:
        resp = await client.post(url, json={"document_id": doc["id"], "version": 1, "page": 3,
                                            "rect": [0.1, 0.2, 0.6, 0.5]}, headers=world.h["chutri"])
        assert resp.status == 200, await resp.text()
        event = await events.next("presenter.view")
    assert event == {"type": "presenter.view", "document_id": doc["id"], "version": 1, "page": 3,
                     "rect": [0.1, 0.2, 0.6, 0.5]}
    view = await (await world.get(url, "quansat")).json()
    assert view["page"] == 3 and view["presenter"] == {"label": "chutri"} and view["not_following"] == []
    # a delegate browses freely, then returns
    async with Events(world) as events:
        resp = await client.post(f"/api/meetings/{world.meeting_id}/following", json={"following": False},
                                 headers=world.h["daibieu"])
        assert resp.status == 200
        assert (await events.next("presenter.followers")) == {"type": "presenter.followers", "not_following": 1}
    staff = await (await world.get(url, "chutri")).json()
    assert staff["not_following"] == [{"label": "daibieu", "point_code": "075"}]
    assert (await (await world.get(url, "daibieu")).json())["not_following"] == []  # staff only
    await client.post(f"/api/meetings/{world.meeting_id}/following", json={"following": True},
                      headers=world.h["daibieu"])
    assert (await (await world.get(url, "chutri")).json())["not_following"] == []


async def test_presenter_view_checks_input_and_rights(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    doc = await world.upload(sample_pdfs.agenda)
    url = f"/api/meetings/{world.meeting_id}/presenter"
    client = world.api.client
    resp = await client.post(url, json={"document_id": doc["id"], "version": 1, "page": 1}, headers=world.h["daibieu"])
    assert resp.status == 403
    for body, status in [({"document_id": doc["id"], "version": 1, "page": 9}, 404),
                         ({"document_id": doc["id"], "version": 2, "page": 1}, 404),
                         ({"document_id": doc["id"], "version": 1, "page": 1, "rect": [0.5, 0.5, 0.1, 0.9]}, 400),
                         ({"document_id": doc["id"], "version": 1, "page": 1, "rect": [0, 0, 2, 1]}, 400),
                         ({"document_id": 99999, "version": 1, "page": 1}, 404)]:
        resp = await client.post(url, json=body, headers=world.h["thuky"])
        assert resp.status == status, (body, await resp.text())
    resp = await client.post(f"/api/meetings/{world.meeting_id}/following", json={"following": "yes"},
                             headers=world.h["daibieu"])
    assert resp.status == 400


async def test_a_restricted_document_is_not_revealed_by_the_presenter_view(world: DocWorld,
                                                                           sample_pdfs: SamplePdfs) -> None:
    secret = await world.upload(sample_pdfs.agenda, visibility="restricted", allowed_roles="chair")
    url = f"/api/meetings/{world.meeting_id}/presenter"
    resp = await world.api.client.post(url, json={"document_id": secret["id"], "version": 1, "page": 2},
                                       headers=world.h["thuky"])
    assert resp.status == 200
    view = await (await world.get(url, "daibieu")).json()
    assert view["document_id"] is None and view["page"] is None
