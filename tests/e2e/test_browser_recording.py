"""The recording indicator in real Chromium against a real server: the chair starts a
recording from the console, the hall PC's room (opened by its invitation link) shows the red
badge live, the chair stops it, both badges go away, and the file is listed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.test_browser_console import no_errors, open_scene
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_recording_badge_live(live_server: LiveServer, browser_context: Callable[..., Any]) -> None:
    scene = open_scene(live_server, browser_context)
    chair, point = scene.chair, scene.point
    assert chair.locator("#recording-badge").is_hidden() and point.locator("#recording-badge").is_hidden()
    assert point.locator("#recording-start").count() == 0  # the hall has no controls
    chair.click("#recording-start")
    for page in (chair, point):
        page.wait_for_selector("#recording-badge", state="visible", timeout=20000)
        assert page.inner_text("#recording-badge") == "● Đang ghi hình"
    chair.wait_for_selector("#recording-stop", state="visible")
    assert chair.locator("#recording-start").is_hidden()
    screenshot(point, "room-recording-badge-vi", full_page=False)
    point.wait_for_timeout(1500)
    chair.click("#recording-stop")
    for page in (chair, point):
        page.wait_for_selector("#recording-badge", state="hidden", timeout=20000)
    chair.wait_for_selector("#recording-start", state="visible")

    async def listed() -> list[Any]:
        from server.recording_service import RECORDING

        assert live_server.app is not None
        return await live_server.app[RECORDING].domain.list(scene.meeting_id)

    (rec,) = live_server.call(listed())
    assert rec.status == "completed" and rec.duration_s and rec.duration_s > 1.0
    no_errors(scene)
