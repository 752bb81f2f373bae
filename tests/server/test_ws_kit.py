"""Shared helpers for the /ws tests (this module holds no tests itself).

``WsPeer`` wraps a real aiohttp client WebSocket; ``Scene`` builds a province with two
districts, a scheduled meeting that invites both, a chair, a delegate at one district and a
device token for each district.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from meetings.calendar import InviteSelection, MeetingDraft
from server.services import Services
from tests.conftest import Api

TIMEOUT = 5.0


async def until(check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until ``check()`` holds (server-side effects of a client action)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class WsPeer:
    """One client connection with helpers to send and expect protocol messages."""

    def __init__(self, ws: ClientWebSocketResponse, name: str = "") -> None:
        self.ws = ws
        self.name = name
        self.welcome: dict[str, Any] = {}
        self.last_seq = 0

    @classmethod
    async def connect(cls, client: TestClient, name: str = "", **kwargs: Any) -> WsPeer:
        return cls(await client.ws_connect("/ws", **kwargs), name)

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": type_, **fields}, ensure_ascii=False))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type is WSMsgType.TEXT, (
            f"{self.name}: expected a text frame, got {msg.type} {msg.data!r}"
        )
        data: dict[str, Any] = json.loads(msg.data)
        if "seq" in data:
            self.last_seq = data["seq"]
        return data

    async def expect(self, type_: str, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """The next message of ``type_`` (matching ``match``); others in between are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            left = deadline - loop.time()
            assert left > 0, f"{self.name}: no {type_} {match} within {timeout}s; saw {seen}"
            try:
                data = await self.recv(left)
            except TimeoutError:
                raise AssertionError(
                    f"{self.name}: no {type_} {match} within {timeout}s; saw {seen}"
                ) from None
            if data["type"] == type_ and all(data.get(k) == v for k, v in match.items()):
                return data
            seen.append(data)

    async def error(self, code: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        data = await self.recv(timeout)
        assert data["type"] == "error" and data["code"] == code, (
            f"{self.name}: wanted error {code}, got {data}"
        )
        return data

    async def silent(self, within: float = 0.3) -> None:
        """Assert that nothing arrives for ``within`` seconds."""
        try:
            msg = await self.ws.receive(timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"{self.name}: expected silence, got {msg.type} {msg.data!r}")

    async def hello(self, token: str | None = None, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"v": 1, **extra}
        if token is not None:
            fields["token"] = token
        await self.send("hello", **fields)
        reply = await self.recv()
        assert reply["type"] in ("welcome", "resumed"), f"{self.name}: hello refused: {reply}"
        self.welcome = reply
        return reply

    async def join(self, meeting_id: int) -> dict[str, Any]:
        await self.send("join", meeting_id=meeting_id)
        reply = await self.recv()
        assert reply["type"] == "joined", f"{self.name}: join refused: {reply}"
        return reply

    async def closed(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the server closes; the code of its close frame (what a browser's
        ``CloseEvent.code`` shows), else the client's close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.ws.receive(timeout=max(0.01, deadline - loop.time()))
            if msg.type is WSMsgType.CLOSE:
                return int(msg.data)
            if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                return self.ws.close_code

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code=code)

    def drop(self) -> None:
        """Lose the connection without a close frame (a cable pulled, a laptop lid shut)."""
        self.ws._writer.transport.abort()

    async def resume(
        self, client: TestClient, name: str = "", **extra: Any
    ) -> tuple[WsPeer, dict[str, Any]]:
        """A new connection resuming this one's session (``hello {resume, last_seq}``)."""
        peer = await WsPeer.connect(client, name or self.name)
        fields = {"resume": self.welcome["resume_token"], "last_seq": self.last_seq, **extra}
        await peer.send("hello", v=1, **{k: v for k, v in fields.items() if v is not None})
        reply = await peer.recv()
        if reply["type"] in ("welcome", "resumed"):
            peer.welcome = reply
            peer.last_seq = self.last_seq
        return peer, reply


@dataclass
class Scene:
    """Points P (province), D1 and D2 (districts), D3 (not invited); meeting ``meeting_id``
    inviting D1 and D2; users chair (chair of the meeting), delegate (at D1), observer."""

    api: Api
    meeting_id: int
    chair: str
    delegate: str
    observer: str
    outsider: str
    d1_device: str
    d2_device: str
    d3_device: str
    d1_link: str

    @property
    def services(self) -> Services:
        return self.api.services

    async def peer(self, token: str | None, name: str = "", **kwargs: Any) -> WsPeer:
        peer = await WsPeer.connect(self.api.client, name, **kwargs)
        await peer.hello(token)
        return peer

    async def joined_peer(self, token: str, name: str = "") -> tuple[WsPeer, dict[str, Any]]:
        peer = await self.peer(token, name)
        return peer, await peer.join(self.meeting_id)


async def build_scene(api: Api) -> Scene:
    reg = api.services.registry
    await reg.create("P", "Tỉnh Hòa Bình", "province")
    d1 = await reg.create("D1", "Huyện Lạc Sơn", "district", "P")
    d2 = await reg.create("D2", "Huyện Mai Châu", "district", "P")
    d3 = await reg.create("D3", "Huyện Đà Bắc", "district", "P")
    chair = await api.user("chutoa", "chair", display_name="Chủ tọa Nguyễn Văn An")
    delegate = await api.user(
        "daibieu", "delegate", point_code="D1", display_name="Đại biểu Lò Thị Bình"
    )
    observer = await api.user("quansat", "observer", point_code="D2")
    outsider = await api.user("nguoingoai", "delegate", point_code="D3")
    start = datetime.now(UTC) + timedelta(hours=1)
    meeting = await api.services.calendar.create(
        MeetingDraft("Hội nghị giao ban tháng 3", start, chair_username="chutoa"), created_by=None
    )
    invited = await api.services.calendar.invite(meeting.id, InviteSelection(codes=("D1", "D2")))
    return Scene(
        api=api,
        meeting_id=meeting.id,
        chair=chair["token"],
        delegate=delegate["token"],
        observer=observer["token"],
        outsider=outsider["token"],
        d1_device=(await reg.issue_token(d1.id)).token,
        d2_device=(await reg.issue_token(d2.id)).token,
        d3_device=(await reg.issue_token(d3.id)).token,
        d1_link=invited.links["D1"],
    )
