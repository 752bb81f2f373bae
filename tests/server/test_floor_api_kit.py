"""Shared helpers for the meeting-conduct API tests (this module holds no tests itself).

``build_hall`` makes a province host point P and ``n`` district points D01…, a meeting chaired
by ``chutri`` with secretary ``thuky``, inviting all of them (plus X, registered but not
invited), a delegate at D01, an observer at D02, an admin, and a device token per point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from meetings.calendar import InviteSelection, MeetingDraft
from tests.conftest import Api


@dataclass
class Hall:
    api: Api
    meeting_id: int
    admin: dict[str, str]
    chair: dict[str, str]
    secretary: dict[str, str]
    delegate: dict[str, str]
    observer: dict[str, str]
    outsider: dict[str, str]
    devices: dict[str, dict[str, str]] = field(default_factory=dict)  # point code -> bearer headers
    codes: list[str] = field(default_factory=list)  # invited district codes

    async def request(self, method: str, path: str, who: dict[str, str] | None,
                      json: Any = None) -> tuple[int, Any]:
        """(status, body); ``who=None`` is anonymous: a fresh session without the test
        client's login cookies."""
        if who is None:
            url = str(self.api.client.make_url(path))
            async with aiohttp.ClientSession() as session, session.request(method, url, json=json) as resp:
                return resp.status, await resp.json()
        resp = await self.api.client.request(method, path, headers=who, json=json)
        body = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, body

    async def call(self, method: str, path: str, who: dict[str, str] | None, json: Any = None,
                   status: int | None = None) -> Any:
        got, body = await self.request(method, path, who, json)
        assert status is None or got == status, f"{method} {path}: {got} {body}"
        return body

    def m(self, suffix: str) -> str:
        return f"/api/meetings/{self.meeting_id}{suffix}"

    async def mark_present(self, *codes: str, status: str = "in_hall") -> None:
        for code in codes:
            await self.call("PUT", self.m(f"/attendance/{code}"), self.secretary,
                            {"status": status, "headcount": 5 if status == "in_hall" else None}, status=200)


async def build_hall(api: Api, n: int = 3) -> Hall:
    reg = api.services.registry
    host = await reg.create("P", "Tỉnh Tuyên Quang", "province")
    codes = [f"D{i:02d}" for i in range(1, n + 1)]
    points = {"P": host}
    names = ["Huyện Lâm Bình", "Huyện Na Hang", "Huyện Chiêm Hóa", "Huyện Hàm Yên", "Huyện Yên Sơn",
             "Huyện Sơn Dương"]
    for i, code in enumerate(codes):
        name = names[i] if i < len(names) else f"Xã Điểm Cầu Số {i + 1}"
        points[code] = await reg.create(code, name, "district", "P")
    points["X"] = await reg.create("X", "Huyện Ngoài Danh Sách", "district", "P")
    admin = await api.user("quantri", "admin", display_name="Quản trị viên")
    chair = await api.user("chutri", "chair", display_name="Nguyễn Văn Chủ")
    secretary = await api.user("thuky", "secretary", display_name="Lê Thị Thư")
    delegate = await api.user("daibieu", "delegate", point_code=codes[0], display_name="Đại biểu Lò Thị Bình")
    observer = await api.user("quansat", "observer", point_code=codes[min(1, n - 1)])
    outsider = await api.user("nguoingoai", "delegate", point_code="X")
    start = datetime.now(UTC) + timedelta(minutes=5)
    meeting = await api.services.calendar.create(MeetingDraft(
        "Hội nghị giao ban trực tuyến quý IV", start, host_point_code="P", chair_username="chutri",
        secretary_username="thuky"), created_by=None)
    await api.services.calendar.invite(meeting.id, InviteSelection(codes=tuple(codes)))
    hall = Hall(api, meeting.id, Api.bearer(admin), Api.bearer(chair), Api.bearer(secretary),
                Api.bearer(delegate), Api.bearer(observer), Api.bearer(outsider), codes=codes)
    for code, point in points.items():
        hall.devices[code] = Api.bearer((await reg.issue_token(point.id)).token)
    return hall
