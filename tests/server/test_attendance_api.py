"""Attendance over real HTTP and WebSockets: live presence, the join/leave log, reports from
the hall, absences with reasons, roll calls, and the refusals."""

from __future__ import annotations

import asyncio

from tests.conftest import Api
from tests.server.test_floor_api_kit import build_hall
from tests.server.test_ws_kit import WsPeer


def by_code(sheet: dict) -> dict[str, dict]:
    return {p["point_code"]: p for p in sheet["points"]}


async def test_presence_report_absence_and_log(api: Api) -> None:
    h = await build_hall(api)
    sheet = by_code(await h.call("GET", h.m("/attendance"), h.delegate, status=200))
    assert set(sheet) == {"P", "D01", "D02", "D03"} and {p["status"] for p in sheet.values()} == {"unknown"}
    token = h.devices["D01"]["Authorization"].split()[1]
    peer = await WsPeer.connect(api.client, "D01")
    await peer.hello(token)
    await peer.join(h.meeting_id)
    sheet = by_code(await h.call("GET", h.m("/attendance"), h.chair, status=200))
    assert sheet["D01"]["status"] == "online" and sheet["D01"]["first_joined_at"]
    assert sheet["D01"]["last_left_at"] is None
    assert await api.services.presence.is_point_present(h.meeting_id, "D01")
    await peer.close()

    async def left() -> bool:
        s = by_code(await h.call("GET", h.m("/attendance"), h.chair, status=200))
        return s["D01"]["status"] == "unknown" and s["D01"]["last_left_at"] is not None

    for _ in range(100):
        if await left():
            break
        await asyncio.sleep(0.05)
    assert await left()
    # the hall reports itself with a headcount; staff mark an absence with its reason
    await h.call("PUT", h.m("/attendance/D02"), h.devices["D02"], {"status": "in_hall", "headcount": 14}, status=200)
    sheet = by_code(await h.call("PUT", h.m("/attendance/D03"), h.secretary,
                                 {"status": "absent", "reason": "Mất điện do mưa bão"}, status=200))
    assert sheet["D02"]["status"] == "in_hall" and sheet["D02"]["headcount"] == 14
    assert sheet["D03"]["status"] == "absent" and sheet["D03"]["reason"] == "Mất điện do mưa bão"


async def test_attendance_refusals(api: Api) -> None:
    h = await build_hall(api)
    # a point not invited
    body = await h.call("PUT", h.m("/attendance/X"), h.secretary, {"status": "in_hall"}, status=404)
    assert body["error"]["code"] == "not_invited"
    await h.call("PUT", h.m("/attendance/NOPE"), h.secretary, {"status": "in_hall"}, status=404)
    # a point for another point, a point marking itself absent, an observer
    await h.call("PUT", h.m("/attendance/D02"), h.devices["D01"], {"status": "in_hall"}, status=403)
    await h.call("PUT", h.m("/attendance/D01"), h.devices["D01"], {"status": "absent"}, status=403)
    await h.call("PUT", h.m("/attendance/D02"), h.observer, {"status": "in_hall"}, status=403)
    await h.call("PUT", h.m("/attendance/D01"), h.devices["X"], {"status": "in_hall"}, status=403)
    # bad values
    body = await h.call("PUT", h.m("/attendance/D01"), h.secretary, {"status": "maybe"}, status=400)
    assert body["error"]["code"] == "invalid_status"
    await h.call("PUT", h.m("/attendance/D01"), h.secretary, {"status": "unknown"}, status=400)
    await h.call("PUT", h.m("/attendance/D01"), h.secretary, {"status": "in_hall", "headcount": -1}, status=400)
    await h.call("PUT", h.m("/attendance/D01"), h.secretary, {"status": "in_hall", "headcount": "9"}, status=400)


async def test_roll_call(api: Api) -> None:
    h = await build_hall(api)
    await h.call("POST", h.m("/roll-call/confirm"), h.devices["D01"], {}, status=409)
    await h.call("POST", h.m("/roll-call"), h.secretary, status=403)
    roll = await h.call("POST", h.m("/roll-call"), h.chair, status=201)
    assert roll["confirmed"] == [] and roll["closed"] is False
    await h.call("POST", h.m("/roll-call"), h.chair, status=409)
    await h.call("POST", h.m("/roll-call/confirm"), h.devices["D01"], {"headcount": 9}, status=200)
    roll = await h.call("POST", h.m("/roll-call/confirm"), h.devices["D02"], {}, status=200)
    assert roll["confirmed"] == ["D01", "D02"]
    await h.call("POST", h.m("/roll-call/confirm"), h.devices["D01"], {}, status=200)  # again: no change
    await h.call("POST", h.m("/roll-call/confirm"), h.devices["X"], {}, status=403)
    await h.call("POST", h.m("/roll-call/confirm"), h.observer, {}, status=403)
    closed = await h.call("POST", h.m("/roll-call/close"), h.chair, status=200)
    assert closed["closed"] is True and closed["confirmed"] == ["D01", "D02"]
    sheet = await h.call("GET", h.m("/attendance"), h.chair, status=200)
    assert sheet["roll_call"]["id"] == roll["id"] and by_code(sheet)["D01"]["headcount"] == 9
    await h.call("POST", h.m("/roll-call/confirm"), h.devices["D03"], {}, status=409)
    await h.call("POST", h.m("/roll-call/close"), h.chair, status=409)
