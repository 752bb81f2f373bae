"""A meeting scene for page tests: points, one account per role (signed-cookie headers ready),
a meeting with invitations. Shared by the page test modules (this module holds no tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meetings.calendar import InviteSelection, MeetingDraft
from server.auth import COOKIE, sign_cookie
from tests.conftest import PASSWORD, Api

TITLE = "Hội nghị <b>giao ban</b> & sơ kết quý I"


@dataclass
class PageWorld:
    api: Api
    cookies: dict[str, dict[str, str]]
    meeting_id: int
    links: dict[str, str]

    async def get(self, path: str, who: str | None = None, **headers: str) -> tuple[int, str, Any]:
        """GET ``path`` as account ``who`` (its session cookie), or anonymously."""
        self.api.client.session.cookie_jar.clear()
        base = self.cookies[who] if who else {}
        resp = await self.api.client.get(path, headers={**base, **headers}, allow_redirects=False)
        return resp.status, await resp.text(), resp


async def build_page_world(
    api: Api,
    *,
    points: list[tuple[str, str, str, str | None]],
    accounts: dict[str, tuple[str, str | None, str]],
    invite: tuple[str, ...],
    title: str = TITLE,
) -> PageWorld:
    """``points``: (code, name, level, parent code); ``accounts``: username → (role, point
    code, display name); the meeting is hosted by the first point, chaired by ``chair`` and
    recorded by ``secretary``, and invites ``invite``."""
    s = api.services
    for code, name, level, parent in points:
        await s.registry.create(code, name, level, parent)
    for username, (role, point, display) in accounts.items():
        await s.accounts.create_user(username, PASSWORD, role, display_name=display, point_code=point)
    meeting = await s.calendar.create(MeetingDraft(
        title=title, starts_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC), host_point_code=points[0][0],
        chair_username="chair", secretary_username="secretary"), created_by=None)
    result = await s.calendar.invite(meeting.id, InviteSelection(codes=invite))
    cookies = {}
    for username in accounts:
        login = await api.login(username)
        cookies[username] = {"Cookie": f"{COOKIE}={sign_cookie(s.secret, login['token'])}"}
    api.client.session.cookie_jar.clear()
    return PageWorld(api, cookies, meeting.id, result.links)
