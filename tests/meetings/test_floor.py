"""The floor as a domain service (no HTTP): turns, totals, main screen, closed meetings, and
the admission rules the WS hub applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.errors import Conflict, Forbidden
from meetings.models import MeetingState, Principal
from meetings.presence import PresenceEntry, PresenceLog
from server.services import Services


async def world(services: Services) -> tuple[int, dict[str, Principal], Principal]:
    reg = services.registry
    await reg.create("P", "Tỉnh Lạng Sơn", "province")
    points = {c: Principal("point", point=await reg.create(c, n, "district", "P"))
              for c, n in (("A", "Huyện Cao Lộc"), ("B", "Huyện Lộc Bình"))}
    chair = Principal("user", user=await services.accounts.create_user("chutri", "mat-khau-thu-nghiem", "chair"))
    meeting = await services.calendar.create(MeetingDraft(
        "Giao ban", datetime.now(UTC) + timedelta(hours=1), host_point_code="P", chair_username="chutri"),
        created_by=None)
    await services.calendar.invite(meeting.id, InviteSelection(codes=("A", "B")))
    return meeting.id, points, chair


async def test_turns_totals_and_main_screen(services: Services) -> None:
    mid, points, chair = await world(services)
    floor = services.floor
    first = await floor.request(mid, points["A"], "  Ý kiến\nvề đường  ")
    assert first.topic == "Ý kiến về đường"  # one clean line
    await floor.request(mid, points["B"])
    state = await floor.grant_next(mid, chair)
    assert state.speaker is not None and state.speaker.point_code == "A"
    assert state.main_screen.point_code == "A" and state.main_screen.reason == "floor"
    state = await floor.grant_next(mid, chair)
    assert state.speaker is not None and state.speaker.point_code == "B"
    state = await floor.revoke(mid, chair)
    assert state.main_screen.point_code == "P" and state.main_screen.reason == "host"
    turns = await floor.turns(mid)
    assert [t.point_code for t in turns] == ["A", "B"] and all(t.ended_at for t in turns)
    assert turns[0].ended_at == turns[1].started_at  # granting B ended A's turn at that instant
    assert {t.point_code for t in state.totals} == {"A", "B"}


async def test_closed_meeting_and_admission(services: Services) -> None:
    mid, points, chair = await world(services)
    floor = services.floor
    scope = await services.calendar.scope(mid)
    await floor.admit(mid, points["A"], scope)
    await floor.remove(mid, chair, "B")
    with pytest.raises(Forbidden):
        await floor.admit(mid, points["B"], scope)
    await floor.set_locked(mid, chair, True)
    with pytest.raises(Conflict):
        await floor.admit(mid, points["A"], scope)  # never joined before
    entry = PresenceEntry.for_principal("k1", points["A"], node_id="n1")
    await PresenceLog(services.db).joined(mid, entry, points["A"])
    await floor.admit(mid, points["A"], scope)  # was here before: may come back
    await floor.admit(mid, chair, scope)  # staff always
    await services.calendar.set_state(mid, MeetingState.CLOSED)
    with pytest.raises(Conflict) as info:
        await floor.request(mid, points["A"])
    assert info.value.code == "meeting_closed"
