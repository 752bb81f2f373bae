"""Presenter follow: rectangles and who is not following."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meetings.bus import MemoryBus
from meetings.errors import Invalid
from meetings.models import Principal, Role, User
from meetings.presenter import PresenterDesk, check_rect

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def test_rect() -> None:
    assert check_rect(None) is None
    assert check_rect([0, 0, 1, 1]) == (0.0, 0.0, 1.0, 1.0)
    for bad in ([0, 0, 1], [0.5, 0, 0.2, 1], [0, 0, 1.5, 1], "0,0,1,1", [True, 0, 1, 1], [0, 0, float("inf"), 1]):
        with pytest.raises(Invalid):
            check_rect(bad)


async def test_not_following_is_tracked_and_only_counts_are_published() -> None:
    bus = MemoryBus()
    desk = PresenterDesk(None, bus)  # type: ignore[arg-type]
    sub = await bus.subscribe("meeting.1")
    viewer = Principal("user", user=User(5, "a", "Đại biểu A", Role.DELEGATE, False, NOW))
    await desk.set_following(1, viewer, False)
    await desk.set_following(1, viewer, False)
    assert [f.label for f in desk.not_following(1)] == ["Đại biểu A"]
    assert desk.not_following(2) == []
    await desk.set_following(1, viewer, True)
    assert desk.not_following(1) == []
    events = [(await sub.get()).event for _ in range(3)]  # type: ignore[union-attr]
    assert [e["not_following"] for e in events] == [1, 1, 0]
    assert all(set(e) == {"type", "not_following"} for e in events)
