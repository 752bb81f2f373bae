"""Scheduling meetings, inviting bridge points, links, visibility and state changes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from meetings.calendar import InviteSelection, MeetingDraft, MeetingPatch, topic
from meetings.clock import utcnow
from meetings.credentials import hash_token
from meetings.errors import Conflict, Invalid, NotFound, Unauthenticated
from meetings.models import Meeting, MeetingState, PointLevel
from meetings.store.tables import invitations
from server.services import Services

ICT = timezone(timedelta(hours=7))
START = datetime(2026, 12, 1, 8, 0, tzinfo=ICT)
TITLE = "Hội nghị trực tuyến sơ kết công tác chuyển đổi số 6 tháng đầu năm"
POINTS = ("code,name,level,parent\n"
          "08,UBND tỉnh Tuyên Quang,province,\n"
          "070,UBND thành phố Tuyên Quang,district,08\n"
          "075,UBND huyện Yên Sơn,district,08\n"
          "02212,UBND phường Phan Thiết,commune,070\n"
          "02437,UBND xã Thắng Quân,commune,075\n"
          "02461,UBND xã Lang Quán,commune,075\n")
PASSWORD = "mat-khau-thu-nghiem"


@pytest.fixture
async def world(services: Services) -> Services:
    await services.registry.import_file("p.csv", POINTS.encode())
    await services.accounts.create_user("chutri", PASSWORD, "chair")
    await services.accounts.create_user("thuky", PASSWORD, "secretary")
    await services.accounts.create_user("daibieu", PASSWORD, "delegate")
    return services


async def schedule(services: Services, **kwargs: object) -> Meeting:
    fields: dict = {"title": TITLE, "starts_at": START, "host_point_code": "08", "chair_username": "chutri",
                    "secretary_username": "thuky", **kwargs}
    return await services.calendar.create(MeetingDraft(**fields), created_by=None)


async def test_create_invites_host(world: Services) -> None:
    meeting = await schedule(world, description="  Thành phần:\r\nlãnh đạo UBND tỉnh  ")
    assert meeting.state is MeetingState.SCHEDULED
    assert meeting.starts_at == START and meeting.starts_at.tzinfo is not None
    assert meeting.description == "Thành phần:\nlãnh đạo UBND tỉnh"
    invited = await world.calendar.invitations(meeting.id)
    assert [i.point.code for i in invited] == ["08"]


@pytest.mark.parametrize("kwargs, code", [
    ({"title": "  "}, "invalid_title"),
    ({"title": "x" * 501}, "invalid_title"),
    ({"starts_at": datetime(2026, 12, 1, 8, 0)}, "invalid_time"),
    ({"ends_at": START - timedelta(hours=1)}, "invalid_time"),
    ({"host_point_code": "nope"}, "point_not_found"),
    ({"chair_username": "nobody"}, "user_not_found"),
    ({"chair_username": "daibieu"}, "invalid_role"),
    ({"secretary_username": "daibieu"}, "invalid_role"),
])
async def test_create_rejects(world: Services, kwargs: dict, code: str) -> None:
    with pytest.raises(Invalid) as info:
        await schedule(world, **kwargs)
    assert info.value.code == code


async def test_disabled_chair_or_host_is_refused(world: Services) -> None:
    chair = await world.accounts.by_username("chutri")
    assert chair is not None
    await world.accounts.set_disabled(chair.id, True)
    with pytest.raises(Invalid) as info:
        await schedule(world)
    assert info.value.code == "user_disabled"
    await world.accounts.set_disabled(chair.id, False)
    await world.registry.set_enabled((await world.registry.by_code("08")).id, False)
    with pytest.raises(Invalid) as host:
        await schedule(world)
    assert host.value.code == "point_disabled"


async def test_invite_selections(world: Services) -> None:
    calendar = world.calendar
    meeting = await schedule(world)
    # all communes of Yên Sơn
    result = await calendar.invite(meeting.id, InviteSelection(under="075", level=PointLevel.COMMUNE))
    assert [p.code for p in result.invited] == ["02437", "02461"]
    assert set(result.links) == {"02437", "02461"}
    assert all(t.startswith("dci_") for t in result.links.values())
    # everything under the province: the host is already there, the rest is new
    result = await calendar.invite(meeting.id, InviteSelection(under="08"))
    assert [p.code for p in result.invited] == ["02212", "070", "075"]
    assert [p.code for p in result.already] == ["02437", "02461", "08"]
    assert set(result.links) == {"02212", "070", "075"}
    # by level everywhere, and explicit codes
    other = await schedule(world, host_point_code=None)
    result = await calendar.invite(other.id, InviteSelection(level=PointLevel.DISTRICT, codes=("02212",)))
    assert [p.code for p in result.invited] == ["02212", "070", "075"]
    levels = [i.point.level for i in await calendar.invitations(other.id)]
    assert levels == sorted(levels, key=lambda lv: lv.rank)


async def test_invite_errors(world: Services) -> None:
    calendar = world.calendar
    meeting = await schedule(world)
    with pytest.raises(Invalid) as empty:
        InviteSelection()
    assert empty.value.code == "empty_selection"
    with pytest.raises(Invalid) as unknown:
        await calendar.invite(meeting.id, InviteSelection(codes=("02437", "X1", "X2")))
    assert unknown.value.details == {"codes": ["X1", "X2"]}
    await world.registry.set_enabled((await world.registry.by_code("02461")).id, False)
    # a disabled point is skipped when selected by level, refused when named
    result = await calendar.invite(meeting.id, InviteSelection(under="075"))
    assert "02461" not in [p.code for p in result.invited]
    with pytest.raises(Invalid) as disabled:
        await calendar.invite(meeting.id, InviteSelection(codes=("02461",)))
    assert disabled.value.code == "point_disabled"
    with pytest.raises(NotFound):
        await calendar.invite(9999, InviteSelection(codes=("08",)))
    await calendar.set_state(meeting.id, MeetingState.CLOSED)
    with pytest.raises(Conflict):
        await calendar.invite(meeting.id, InviteSelection(codes=("070",)))


async def test_links_resolve_renew_and_die(world: Services) -> None:
    calendar = world.calendar
    meeting = await schedule(world)
    token = (await calendar.invite(meeting.id, InviteSelection(codes=("02437",)))).links["02437"]
    point, meeting_id = await calendar.resolve_invitation(token)
    assert (point.code, meeting_id) == ("02437", meeting.id)
    async with world.db.connect() as conn:
        hashes = set((await conn.execute(sa.select(invitations.c.token_hash))).scalars())
    assert hash_token(token) in hashes and token not in hashes
    renewed = await calendar.renew_link(meeting.id, point.id)
    with pytest.raises(Unauthenticated):
        await calendar.resolve_invitation(token)
    assert (await calendar.resolve_invitation(renewed))[0].code == "02437"
    # expiry
    async with world.db.transaction() as conn:
        await conn.execute(invitations.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(Unauthenticated) as expired:
        await calendar.resolve_invitation(renewed)
    assert expired.value.code == "token_expired"
    renewed = await calendar.renew_link(meeting.id, point.id)
    # a disabled point's link stops working
    await world.registry.set_enabled(point.id, False)
    with pytest.raises(Unauthenticated):
        await calendar.resolve_invitation(renewed)
    await world.registry.set_enabled(point.id, True)
    # closing the meeting ends every link
    await calendar.set_state(meeting.id, MeetingState.CLOSED)
    with pytest.raises(Unauthenticated) as closed:
        await calendar.resolve_invitation(renewed)
    assert closed.value.code == "meeting_closed"
    with pytest.raises(Conflict):
        await calendar.renew_link(meeting.id, point.id)


async def test_uninvite(world: Services) -> None:
    calendar = world.calendar
    meeting = await schedule(world)
    token = (await calendar.invite(meeting.id, InviteSelection(codes=("070",)))).links["070"]
    point = await world.registry.by_code("070")
    await calendar.uninvite(meeting.id, point.id)
    with pytest.raises(Unauthenticated):
        await calendar.resolve_invitation(token)
    with pytest.raises(NotFound):
        await calendar.uninvite(meeting.id, point.id)
    with pytest.raises(NotFound):
        await calendar.renew_link(meeting.id, point.id)
    host = await world.registry.by_code("08")
    with pytest.raises(Conflict) as info:
        await calendar.uninvite(meeting.id, host.id)
    assert info.value.code == "host_point"


async def test_list_visibility_and_filters(world: Services) -> None:
    calendar = world.calendar
    chair = await world.accounts.by_username("chutri")
    secretary = await world.accounts.by_username("thuky")
    assert chair and secretary
    a = await schedule(world, title="Họp A: Đông Lai", starts_at=START)
    b = await schedule(world, title="Họp B", starts_at=START + timedelta(days=1), chair_username=None,
                       secretary_username="thuky", host_point_code="075")
    c = await schedule(world, title="Họp C", starts_at=START + timedelta(days=2), chair_username=None,
                       secretary_username=None, host_point_code=None)
    assert [m.id for m in await calendar.list()] == [c.id, b.id, a.id]  # latest start first
    assert [m.id for m in await calendar.list(user_id=chair.id)] == [a.id]
    assert [m.id for m in await calendar.list(user_id=secretary.id)] == [b.id, a.id]
    yen_son = await world.registry.by_code("075")
    assert [m.id for m in await calendar.list(point_ids={yen_son.id})] == [b.id]
    assert [m.id for m in await calendar.list(point_ids=set(), user_id=None)] == []
    assert [m.id for m in await calendar.list(query="dong lai")] == [a.id]
    assert [m.id for m in await calendar.list(query="100%")] == []
    assert [m.id for m in await calendar.list(meeting_id=b.id)] == [b.id]
    assert [m.id for m in await calendar.list(limit=1, offset=1)] == [b.id]
    await calendar.set_state(a.id, MeetingState.OPEN)
    assert [m.id for m in await calendar.list(state=MeetingState.OPEN)] == [a.id]


async def test_state_transitions_publish_events(world: Services) -> None:
    calendar = world.calendar
    meeting = await schedule(world)
    sub = await world.bus.subscribe(topic(meeting.id))
    opened = await calendar.set_state(meeting.id, MeetingState.OPEN)
    assert opened.state is MeetingState.OPEN and opened.opened_at is not None
    assert (await calendar.set_state(meeting.id, MeetingState.OPEN)).opened_at == opened.opened_at  # idempotent
    closed = await calendar.set_state(meeting.id, MeetingState.CLOSED)
    assert closed.closed_at is not None
    with pytest.raises(Conflict) as info:
        await calendar.set_state(meeting.id, MeetingState.OPEN)
    assert info.value.code == "invalid_transition"
    events = [(await asyncio.wait_for(sub.get(), 1)) for _ in range(2)]
    assert [(e.event["type"], e.event["state"]) for e in events if e] == [("meeting.state", "open"),
                                                                          ("meeting.state", "closed")]
    await sub.close()


async def test_update_patch(world: Services) -> None:
    calendar = world.calendar
    meeting = await schedule(world)
    sub = await world.bus.subscribe(topic(meeting.id))
    updated = await calendar.update(meeting.id, MeetingPatch(
        title="Hội nghị giao ban trực tuyến tháng 12", ends_at=START + timedelta(hours=3),
        host_point_code="075", secretary_username=None))
    assert updated.title == "Hội nghị giao ban trực tuyến tháng 12"
    assert updated.ends_at == START + timedelta(hours=3)
    assert updated.secretary_id is None and updated.chair_id == meeting.chair_id
    assert "075" in [i.point.code for i in await calendar.invitations(meeting.id)]  # new host invited
    event = await asyncio.wait_for(sub.get(), 1)
    assert event and event.event["type"] == "meeting.updated" and "title" in event.event["fields"]
    await sub.close()
    assert (await calendar.list(query="giao ban"))[0].id == meeting.id  # folded title follows
    with pytest.raises(Invalid):
        await calendar.update(meeting.id, MeetingPatch(starts_at=START + timedelta(hours=4)))  # after ends_at
    with pytest.raises(Invalid):
        await calendar.update(meeting.id, MeetingPatch(title=""))
    with pytest.raises(Invalid):
        await calendar.update(meeting.id, MeetingPatch(chair_username="daibieu"))
    await calendar.set_state(meeting.id, MeetingState.CLOSED)
    with pytest.raises(Conflict):
        await calendar.update(meeting.id, MeetingPatch(title="Muộn"))


async def test_scope_lists_invited_points(world: Services) -> None:
    meeting = await schedule(world)
    await world.calendar.invite(meeting.id, InviteSelection(codes=("070",)))
    scope = await world.calendar.scope(meeting.id)
    codes = {(await world.registry.get(pid)).code for pid in scope.invited_point_ids}
    assert codes == {"08", "070"} and scope.meeting.id == meeting.id
    with pytest.raises(NotFound):
        await world.calendar.scope(12345)
