"""Attendance as a domain service: live presence (a real MemoryPresence) and reports combine
into one status per point; online time is the union of overlapping sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meetings.attendance import Status, _union_seconds
from meetings.calendar import InviteSelection, MeetingDraft
from meetings.models import Principal
from meetings.presence import MemoryPresence, PresenceEntry
from server.services import Services

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


async def test_status_combines_live_presence_and_reports(services: Services) -> None:
    reg = services.registry
    await reg.create("P", "Tỉnh Cao Bằng", "province")
    a = Principal("point", point=await reg.create("A", "Huyện Hà Quảng", "district", "P"))
    await reg.create("B", "Huyện Trùng Khánh", "district", "P")
    await reg.create("C", "Huyện Bảo Lạc", "district", "P")
    chair = Principal("user", user=await services.accounts.create_user("chutri", "mat-khau-thu-nghiem", "chair"))
    meeting = await services.calendar.create(MeetingDraft(
        "Điểm danh", datetime.now(UTC) + timedelta(hours=1), chair_username="chutri"), created_by=None)
    await services.calendar.invite(meeting.id, InviteSelection(codes=("A", "B", "C")))
    live = MemoryPresence()
    services.presence.attach(live)
    await live.add(meeting.id, PresenceEntry.for_principal("s1", a, node_id="n"))
    await services.attendance.set(meeting.id, chair, "B", Status.IN_HALL, headcount=30)
    await services.attendance.set(meeting.id, chair, "C", Status.ABSENT, reason="Họp Tỉnh ủy")
    sheet = {p.point_code: p for p in (await services.attendance.sheet(meeting.id)).points}
    assert sheet["A"].status is Status.ONLINE
    assert sheet["B"].status is Status.IN_HALL and sheet["B"].headcount == 30
    assert sheet["C"].status is Status.ABSENT and sheet["C"].reason == "Họp Tỉnh ủy"
    ids = await services.attendance.present_point_ids(meeting.id)
    assert {a.point.id} < ids and len(ids) == 2  # type: ignore[union-attr]
    assert await services.presence.is_point_present(meeting.id, "A")
    assert not await services.presence.is_point_present(meeting.id, "C")
    # an absent point that comes online is online
    c = Principal("point", point=await reg.by_code("C"))
    await live.add(meeting.id, PresenceEntry.for_principal("s2", c, node_id="n"))
    sheet = {p.point_code: p for p in (await services.attendance.sheet(meeting.id)).points}
    assert sheet["C"].status is Status.ONLINE and sheet["C"].reason == ""


def test_online_seconds_count_overlaps_once() -> None:
    m = timedelta(minutes=1)
    assert _union_seconds([]) == 0
    assert _union_seconds([(T0, T0 + 10 * m), (T0 + 5 * m, T0 + 20 * m), (T0 + 30 * m, T0 + 31 * m)]) == 21 * 60
