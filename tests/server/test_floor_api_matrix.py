"""The permission matrix of the meeting-conduct routes (floor, attendance, votes, minutes,
audit) over real HTTP, written as a table: role × action → status.

Cells run in table order (rows top to bottom, subjects left to right); where the allowed
outcome depends on what happened before (a second ballot of the same point), the table says so.

Subjects: admin; chair and secretary of the meeting (no point); delegate at D01 (invited);
observer at D02 (invited); device = hall PC of D01; link = invitation link of D03; outsider =
a delegate at X (not invited); anonymous.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.server.test_floor_api_kit import build_hall

SUBJECTS = ("admin", "chair", "secretary", "delegate", "observer", "device", "link", "outsider", "anonymous")

# floor.request: admin/chair/secretary have no point (400 no_point); the device asks after the
# delegate of the same point (409 already_requested). ballot: the device resends D01's ballot
# (same client ballot id: 201 duplicate). confirm: no roll call running (409).
TABLE = """
route               admin chair secretary delegate observer device link outsider anonymous
floor.get           200   200   200       200      200      200    200  403      401
floor.request       400   400   400       201      403      409    201  403      401
floor.grant         200   200   403       403      403      403    403  403      401
floor.mute          200   200   403       403      403      403    403  403      401
floor.lock          200   200   403       403      403      403    403  403      401
attendance.list     200   200   200       200      200      200    200  403      401
attendance.set_d01  200   200   200       200      403      200    403  403      401
roll_call.confirm   400   400   400       409      403      409    409  403      401
votes.list          200   200   200       200      200      200    200  403      401
votes.open          201   201   403       403      403      403    403  403      401
votes.ballot        403   403   403       201      403      201    201  403      401
votes.result_early  200   200   200       403      403      403    403  403      401
votes.publish_open  409   409   403       403      403      403    403  403      401
minutes.list        200   200   200       403      403      403    403  403      401
minutes.conclude    200   200   200       403      403      403    403  403      401
audit.list          200   403   403       403      403      403    403  403      401
"""


def parse_table(text: str) -> dict[str, dict[str, int]]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    assert tuple(header) == SUBJECTS
    return {row[0]: dict(zip(header, map(int, row[1:]), strict=True)) for row in rows}


async def test_conduct_permission_matrix(api: Api) -> None:
    h = await build_hall(api)
    link = await api.services.calendar.renew_link(h.meeting_id, (await api.services.registry.by_code("D03")).id)
    who = {"admin": h.admin, "chair": h.chair, "secretary": h.secretary, "delegate": h.delegate,
           "observer": h.observer, "device": h.devices["D01"], "link": {"Authorization": f"Bearer {link}"},
           "outsider": h.outsider, "anonymous": None}
    await h.mark_present("D01", "D02", "D03")
    vote = await h.call("POST", h.m("/votes"), h.chair, {"title": "Ma trận"}, status=201)
    m, v = h.m, vote["id"]

    def request_for(route: str, subject: str) -> tuple[str, str, Any]:
        ballot_point = {"delegate": "D01", "device": "D01", "link": "D03"}.get(subject, subject)
        return {
            "floor.get": ("GET", m("/floor"), None),
            "floor.request": ("POST", m("/floor/requests"), {"topic": "Ý kiến"}),
            "floor.grant": ("POST", m("/floor/grant"), {"point_code": "D02"}),
            "floor.mute": ("POST", m("/points/D02/mute"), {"muted": False}),
            "floor.lock": ("POST", m("/lock"), {"locked": False}),
            "attendance.list": ("GET", m("/attendance"), None),
            "attendance.set_d01": ("PUT", m("/attendance/D01"), {"status": "in_hall", "headcount": 4}),
            "roll_call.confirm": ("POST", m("/roll-call/confirm"), {}),
            "votes.list": ("GET", m("/votes"), None),
            "votes.open": ("POST", m("/votes"), {"title": f"Biểu quyết của {subject}"}),
            "votes.ballot": ("POST", f"/api/votes/{v}/ballots",
                             {"choice": "agree", "client_ballot_id": f"matrix-ballot-{ballot_point}"}),
            "votes.result_early": ("GET", f"/api/votes/{v}/result", None),
            "votes.publish_open": ("POST", f"/api/votes/{v}/publish", None),
            "minutes.list": ("GET", m("/minutes"), None),
            "minutes.conclude": ("PUT", m("/minutes/conclusions"), {"text": f"Kết luận ({subject})"}),
            "audit.list": ("GET", "/api/audit", None),
        }[route]

    expected = parse_table(TABLE)
    wrong = []
    for route, row in expected.items():
        for subject in SUBJECTS:
            method, path, body = request_for(route, subject)
            status, got = await h.request(method, path, who[subject], body)
            if status != row[subject]:
                wrong.append(f"{route} × {subject}: expected {row[subject]}, got {status} {got}")
    assert not wrong, "\n".join(wrong)
