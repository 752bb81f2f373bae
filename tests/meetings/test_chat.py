"""Meeting chat: cleaned, limited, attributed, ordered, and kept across restarts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meetings.calendar import MeetingDraft
from meetings.chat import MeetingChat
from meetings.errors import Invalid
from meetings.models import Principal
from server.config import Config
from server.services import Services

T0 = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


async def test_post_and_read_back(services: Services, config: Config) -> None:
    point = await services.registry.create("X07", "Xã Tân Lập", "province")
    user = await services.accounts.create_user(
        "daibieu",
        "mat-khau-thu-nghiem",
        "delegate",
        point_code="X07",
        display_name="Đại biểu Hà Văn Cường",
    )
    meeting = await services.calendar.create(MeetingDraft("Giao ban", T0), created_by=None)
    other = await services.calendar.create(MeetingDraft("Họp khác", T0), created_by=None)
    chat = MeetingChat(services.db, max_chars=25)
    device = Principal("point", point=point)
    person = Principal("user", user=user, point=point)

    first = await chat.post(meeting.id, device, "  Xin chào\r\ncác đồng chí\x00 ")
    assert (
        first.text == "Xin chào\ncác đồng chí"
        and first.kind == "point"
        and first.point_code == "X07"
    )
    assert first.as_json()["from"] == {"kind": "point", "label": "Xã Tân Lập", "point_code": "X07"}
    second = await chat.post(meeting.id, person, "Đã rõ")
    assert second.as_json()["from"] == {
        "kind": "user",
        "label": "Đại biểu Hà Văn Cường",
        "point_code": "X07",
    }
    await chat.post(other.id, device, "ở cuộc họp khác")
    with pytest.raises(Invalid) as too_long:
        await chat.post(meeting.id, device, "a" * 26)
    assert too_long.value.code == "text_too_long"
    with pytest.raises(Invalid) as empty:
        await chat.post(meeting.id, device, " \x07\n ")
    assert empty.value.code == "text_empty"

    assert [m.text for m in await chat.recent(meeting.id, 10)] == [
        "Xin chào\ncác đồng chí",
        "Đã rõ",
    ]
    assert [m.text for m in await chat.recent(meeting.id, 1)] == ["Đã rõ"]
    assert await chat.recent(meeting.id, 0) == []
    assert (await chat.recent(meeting.id, 10))[0] == first

    # A restart loses no chat.
    await services.close()
    restarted = await Services.start(config)
    try:
        kept = await MeetingChat(restarted.db).recent(meeting.id, 10)
        assert [(m.id, m.text, m.sender) for m in kept] == [
            (first.id, first.text, "Xã Tân Lập"),
            (second.id, "Đã rõ", "Đại biểu Hà Văn Cường"),
        ]
    finally:
        await restarted.close()
