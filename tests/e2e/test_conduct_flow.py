"""End to end over real WebSockets and HTTP: 30 bridge points join a meeting, ask for the
floor, the chair grants it in order (every point sees the main screen change), a vote runs
(live counts, never choices, in the events), and the minutes are generated and contain it all."""

from __future__ import annotations

import asyncio
import io
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pypdf

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.models import MeetingState
from tests.conftest import Api
from tests.server.test_ws_kit import WsPeer

POINTS = 30


Seen = dict[str, list[dict[str, Any]]]


async def events(peer: WsPeer, seen: Seen, kind: str, n: int, timeout: float = 15.0,
                 **match: Any) -> list[dict[str, Any]]:
    """The next ``n`` relayed events of ``kind``; every event read is kept in ``seen``."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(out) < n:
        msg = await peer.recv(max(0.01, deadline - loop.time()))
        if msg["type"] != "event":
            continue
        event = msg["event"]
        seen.setdefault(peer.name, []).append(event)
        if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
            out.append(event)
    return out


def nfc(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


async def test_thirty_points_floor_vote_minutes(api: Api) -> None:
    services = api.services
    reg = services.registry
    await reg.create("T", "Tỉnh Hà Giang", "province")
    codes = [f"X{i:02d}" for i in range(1, POINTS + 1)]
    names = {code: f"Huyện Đồng Văn số {i}" for i, code in enumerate(codes, 1)}
    tokens = {}
    for code in codes:
        point = await reg.create(code, names[code], "district", "T")
        tokens[code] = (await reg.issue_token(point.id)).token
    chair = await api.user("chutri", "chair", display_name="Chủ tịch Hoàng Văn Đức")
    secretary = await api.user("thuky", "secretary", display_name="Thư ký Vàng Thị Mỷ")
    meeting = await services.calendar.create(MeetingDraft(
        "Hội nghị trực tuyến triển khai nhiệm vụ năm 2027", datetime.now(UTC) + timedelta(minutes=1),
        host_point_code="T", chair_username="chutri", secretary_username="thuky"), created_by=None)
    await services.calendar.invite(meeting.id, InviteSelection(codes=tuple(codes)))
    await services.calendar.set_state(meeting.id, MeetingState.OPEN)
    mid = meeting.id
    seen: Seen = {}
    client = api.client
    chair_h, sec_h = Api.bearer(chair), Api.bearer(secretary)

    # everyone joins over WebSocket: attendance sees them online
    console = await WsPeer.connect(client, "chair")
    await console.hello(chair["token"])
    await console.join(mid)
    peers: dict[str, WsPeer] = {}
    for code in codes:
        peer = await WsPeer.connect(client, code)
        await peer.hello(tokens[code])
        await peer.join(mid)
        peers[code] = peer
    sheet = await (await client.get(f"/api/meetings/{mid}/attendance", headers=chair_h)).json()
    online = {p["point_code"] for p in sheet["points"] if p["status"] == "online"}
    assert online == set(codes)

    # 30 requests for the floor, in a known order
    order = list(reversed(codes))
    for i, code in enumerate(order):
        resp = await client.post(f"/api/meetings/{mid}/floor/requests", json={"topic": f"Ý kiến thứ {i + 1}"},
                                 headers=Api.bearer(tokens[code]))
        assert resp.status == 201, await resp.text()
    floor = await (await client.get(f"/api/meetings/{mid}/floor", headers=chair_h)).json()
    assert [q["point_code"] for q in floor["queue"]] == order
    # the chair grants in order; every point sees the main screen move to the speaker
    for code in order:
        resp = await client.post(f"/api/meetings/{mid}/floor/next", headers=chair_h)
        state = await resp.json()
        assert resp.status == 200 and state["speaker"]["point_code"] == code
        assert state["main_screen"] == {"point_code": code, "label": names[code], "reason": "floor"}
    watcher = peers[codes[0]]
    changes = await events(watcher, seen, "main_screen.changed", POINTS)
    assert [e["point_code"] for e in changes] == order
    await client.post(f"/api/meetings/{mid}/floor/revoke", headers=chair_h)
    floor = await (await client.get(f"/api/meetings/{mid}/floor", headers=chair_h)).json()
    assert floor["queue"] == [] and {t["point_code"] for t in floor["totals"]} == set(codes)

    # a vote: every present point votes at once
    resp = await client.post(f"/api/meetings/{mid}/votes", json={"title": "Thông qua kế hoạch năm 2027"},
                             headers=chair_h)
    vote = await resp.json()
    assert resp.status == 201 and vote["eligible"] == POINTS
    await events(watcher, seen, "vote.opened", 1, vote_id=vote["id"])
    plan = {code: ("agree" if i < 24 else "disagree" if i < 28 else "abstain") for i, code in enumerate(codes)}
    sends = [client.post(f"/api/votes/{vote['id']}/ballots", headers=Api.bearer(tokens[code]),
                         json={"choice": plan[code], "client_ballot_id": uuid.uuid4().hex}) for code in codes]
    assert all(r.status == 201 for r in await asyncio.gather(*sends))
    counts = await events(console, seen, "vote.count", POINTS, vote_id=vote["id"])
    assert max(e["ballots_cast"] for e in counts) == POINTS
    hidden = await client.get(f"/api/votes/{vote['id']}/result", headers=Api.bearer(tokens[codes[0]]))
    assert hidden.status == 403
    await client.post(f"/api/votes/{vote['id']}/close", headers=chair_h)
    await client.post(f"/api/votes/{vote['id']}/publish", headers=chair_h)
    await events(watcher, seen, "vote.published", 1, vote_id=vote["id"])
    result = await (await client.get(f"/api/votes/{vote['id']}/result", headers=Api.bearer(tokens[codes[0]]))).json()
    assert result["counts"] == {"agree": 24, "disagree": 4, "abstain": 2} and result["cast"] == POINTS
    # events carried counts, never choices
    for peer in (console, watcher):
        for event in seen.get(peer.name, []):
            assert "choice" not in event and "counts" not in event, event

    # the minutes
    resp = await client.post(f"/api/meetings/{mid}/minutes", headers=sec_h, json={
        "conclusions": "Thống nhất thông qua kế hoạch; giao các xã triển khai trước ngày 15/01/2027."})
    made = await resp.json()
    assert resp.status == 201, made
    pdf = await (await client.get(made["url"], headers=sec_h)).read()
    text = nfc(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages))
    for code in codes:
        assert nfc(names[code]) in text
    for expected in ("Ý kiến thứ 1", "Ý kiến thứ 30", "Thông qua kế hoạch năm 2027", "Tán thành",
                     "Không tán thành", "Không biểu quyết", "80,00%", "13,33%", "6,67%", "Trực tuyến",
                     "giao các xã triển khai trước ngày 15/01/2027", "Chủ tịch Hoàng Văn Đức", "Thư ký Vàng Thị Mỷ"):
        assert nfc(expected) in text, expected
    for peer in (console, *peers.values()):
        await peer.close()
