"""The floor over real HTTP: request, queue order, grant (main screen + unmute), next, revoke,
totals, mute, remove, lock, and the refusals."""

from __future__ import annotations

from tests.conftest import Api
from tests.server.test_floor_api_kit import build_hall
from tests.server.test_ws_kit import WsPeer


async def test_queue_grant_next_revoke_and_totals(api: Api) -> None:
    h = await build_hall(api)
    floor = await h.call("GET", h.m("/floor"), h.delegate, status=200)
    assert floor["speaker"] is None and floor["queue"] == []
    assert floor["main_screen"] == {"point_code": "P", "label": "Tỉnh Tuyên Quang", "reason": "host"}
    first = await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {"topic": "Ý kiến về giải ngân"},
                         status=201)
    second = await h.call("POST", h.m("/floor/requests"), h.delegate, {}, status=201)
    assert second["point_code"] == "D01" and second["label"] == "Đại biểu Lò Thị Bình"
    await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {}, status=409)
    # the chair mutes D02, then grants it: main screen + unmuted
    await h.call("POST", h.m("/points/D02/mute"), h.chair, {"muted": True}, status=200)
    floor = await h.call("GET", h.m("/floor"), h.chair, status=200)
    assert [q["id"] for q in floor["queue"]] == [first["id"], second["id"]] and floor["muted"] == ["D02"]
    floor = await h.call("POST", h.m("/floor/grant"), h.chair, {"request_id": first["id"]}, status=200)
    assert floor["speaker"]["point_code"] == "D02" and floor["speaker"]["topic"] == "Ý kiến về giải ngân"
    assert floor["main_screen"]["point_code"] == "D02" and floor["main_screen"]["reason"] == "floor"
    assert floor["muted"] == [] and [q["id"] for q in floor["queue"]] == [second["id"]]
    floor = await h.call("POST", h.m("/floor/next"), h.chair, status=200)
    assert floor["speaker"]["point_code"] == "D01" and floor["queue"] == []
    await h.call("POST", h.m("/floor/next"), h.chair, status=409)
    floor = await h.call("POST", h.m("/floor/revoke"), h.chair, status=200)
    assert floor["speaker"] is None and floor["main_screen"]["reason"] == "host"
    assert {t["point_code"] for t in floor["totals"]} == {"D01", "D02"}
    assert all(t["seconds"] >= 0 for t in floor["totals"])
    await h.call("POST", h.m("/floor/revoke"), h.chair, status=409)
    # the chair may give the floor to a point that did not ask
    floor = await h.call("POST", h.m("/floor/grant"), h.chair, {"point_code": "D03"}, status=200)
    assert floor["main_screen"] == {"point_code": "D03", "label": "Huyện Chiêm Hóa", "reason": "chair"}


async def test_floor_refusals(api: Api) -> None:
    h = await build_hall(api)
    req = await h.call("POST", h.m("/floor/requests"), h.devices["D01"], {}, status=201)
    # a grant by a non-chair
    for who in (h.secretary, h.delegate, h.devices["D01"], h.observer):
        body = await h.call("POST", h.m("/floor/grant"), who, {"request_id": req["id"]}, status=403)
        assert body["error"]["code"] == "forbidden"
    await h.call("POST", h.m("/floor/grant"), None, {"request_id": req["id"]}, status=401)
    # bad grants
    await h.call("POST", h.m("/floor/grant"), h.chair, {}, status=400)
    await h.call("POST", h.m("/floor/grant"), h.chair, {"request_id": 999}, status=404)
    body = await h.call("POST", h.m("/floor/grant"), h.chair, {"point_code": "X"}, status=404)
    assert body["error"]["code"] == "not_invited"
    await h.call("POST", h.m("/floor/grant"), h.chair, {"request_id": "1"}, status=400)
    # observers, outsiders, users without a point cannot ask
    await h.call("POST", h.m("/floor/requests"), h.observer, {}, status=403)
    await h.call("POST", h.m("/floor/requests"), h.outsider, {}, status=403)
    body = await h.call("POST", h.m("/floor/requests"), h.chair, {}, status=400)
    assert body["error"]["code"] == "no_point"
    await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {"topic": "x" * 501}, status=400)
    await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {"bogus": 1}, status=400)
    # withdraw: another point may not, the requester may
    await h.call("DELETE", h.m(f"/floor/requests/{req['id']}"), h.devices["D02"], status=403)
    await h.call("DELETE", h.m(f"/floor/requests/{req['id']}"), h.devices["D01"], status=204)
    await h.call("DELETE", h.m(f"/floor/requests/{req['id']}"), h.chair, status=404)


async def test_remove_point_and_lock(api: Api) -> None:
    h = await build_hall(api)
    await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {}, status=201)
    floor = await h.call("POST", h.m("/floor/grant"), h.chair, {"point_code": "D02"}, status=200)
    assert floor["speaker"]["point_code"] == "D02"
    floor = await h.call("POST", h.m("/points/D02/remove"), h.chair, status=200)
    assert floor["speaker"] is None and floor["main_screen"]["point_code"] == "P" and "D02" in floor["muted"]
    body = await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {}, status=403)
    assert body["error"]["code"] == "point_removed"
    floor = await h.call("POST", h.m("/lock"), h.chair, {"locked": True}, status=200)
    assert floor["locked"] is True
    await h.call("POST", h.m("/lock"), h.secretary, {"locked": False}, status=403)
    await h.call("POST", h.m("/lock"), h.chair, {"locked": "yes"}, status=400)
    await h.call("POST", h.m("/points/X/mute"), h.chair, {"muted": True}, status=404)
    assert (await h.call("POST", h.m("/lock"), h.admin, {"locked": False}, status=200))["locked"] is False


async def test_removed_points_and_newcomers_to_a_locked_meeting_cannot_join(api: Api) -> None:
    h = await build_hall(api)

    async def joins(code: str) -> dict:
        peer = await WsPeer.connect(api.client, code)
        await peer.hello(h.devices[code]["Authorization"].split()[1])
        await peer.send("join", meeting_id=h.meeting_id)
        reply = await peer.recv()
        await peer.close()
        return reply

    assert (await joins("D01"))["type"] == "joined"
    await h.call("POST", h.m("/points/D02/remove"), h.chair, status=200)
    reply = await joins("D02")
    assert reply["type"] == "error" and reply["code"] == "forbidden"
    assert reply["details"]["reason"] == "point_removed"
    await h.call("POST", h.m("/lock"), h.chair, {"locked": True}, status=200)
    reply = await joins("D03")  # never joined: refused
    assert reply["type"] == "error" and reply["details"]["reason"] == "meeting_locked"
    assert (await joins("D01"))["type"] == "joined"  # was in the meeting before: may come back
    chair = await WsPeer.connect(api.client, "chair")
    await chair.hello(h.chair["Authorization"].split()[1])
    assert (await chair.join(h.meeting_id))["type"] == "joined"
    await chair.close()
    await h.call("POST", h.m("/lock"), h.chair, {"locked": False}, status=200)
    assert (await joins("D03"))["type"] == "joined"
