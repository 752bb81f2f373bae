"""Helpers of the documents API tests: a meeting with staff, invited and uninvited people."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Self

import aiohttp

from tests.conftest import Api

POINTS = ("code,name,level,parent\n"
          "08,UBND tỉnh Tuyên Quang,province,\n"
          "075,UBND huyện Yên Sơn,district,08\n"
          "02212,UBND phường Phan Thiết,commune,075\n"
          "02461,UBND xã Lang Quán,commune,075\n")


class DocWorld:
    """A meeting chaired by ``chutri`` with secretary ``thuky``; ``daibieu`` (075) and
    ``quansat`` (02212) are invited, ``ngoai`` (02461) is not."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.h: dict[str, dict[str, str]] = {}
        self.meeting_id = 0

    async def setup(self) -> DocWorld:
        await self.api.services.registry.import_file("p.csv", POINTS.encode())
        for username, role, point in [("chutri", "chair", "08"), ("thuky", "secretary", "08"),
                                      ("daibieu", "delegate", "075"), ("daibieu2", "delegate", "075"),
                                      ("quansat", "observer", "02212"), ("ngoai", "delegate", "02461")]:
            self.h[username] = self.api.bearer(await self.api.user(username, role, point_code=point))
        self.api.client.session.cookie_jar.clear()
        resp = await self.api.client.post("/api/meetings", json={
            "title": "Họp trực tuyến về chuyển đổi số", "starts_at": "2026-12-01T08:00:00+07:00",
            "host_point_code": "08", "secretary_username": "thuky"}, headers=self.h["chutri"])
        assert resp.status == 201, await resp.text()
        self.meeting_id = (await resp.json())["id"]
        resp = await self.api.client.post(f"/api/meetings/{self.meeting_id}/invitations",
                                          json={"codes": ["075", "02212"]}, headers=self.h["chutri"])
        assert resp.status == 200, await resp.text()
        return self

    async def upload(self, path: Path | None, who: str = "thuky", *, filename: str | None = None,
                     data: bytes | None = None, expect: int | None = 201, **fields: str) -> Any:
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        payload = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
        form.add_field("file", payload, filename=filename or (path.name if path else "file.pdf"),
                       content_type="application/pdf")
        resp = await self.api.client.post(f"/api/meetings/{self.meeting_id}/documents", data=form,
                                          headers=self.h[who])
        body = await resp.json()
        if expect is not None:
            assert resp.status == expect, body
        return body

    async def raw_upload(self, filename: bytes, data: bytes, who: str = "thuky") -> aiohttp.ClientResponse:
        """A hand-made multipart body: the file name may hold bytes a client library refuses."""
        boundary = "diemcau-test-boundary"
        body = (f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="file"; filename="'
                + filename + b'"\r\nContent-Type: application/pdf\r\n\r\n' + data
                + f"\r\n--{boundary}--\r\n".encode())
        return await self.api.client.post(
            f"/api/meetings/{self.meeting_id}/documents", data=body,
            headers={**self.h[who], "Content-Type": f"multipart/form-data; boundary={boundary}"})

    async def get(self, url: str, who: str = "daibieu", **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.api.client.get(url, headers={**self.h[who], **kwargs.pop("headers", {})}, **kwargs)

    async def wait_rendered(self, document_id: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            resp = await self.get(f"/api/documents/{document_id}", "thuky")
            doc = await resp.json()
            current = doc["versions"][-1]
            if current["rendered_pages"] >= current["page_count"]:
                return doc  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, doc
            await asyncio.sleep(0.1)


def stored_files(api: Api) -> list[Path]:
    root = api.services.files.root
    return [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]


class Events:
    """Everything published on the meeting's topic, read with a timeout."""

    def __init__(self, world: DocWorld) -> None:
        self.world = world
        self.sub: Any = None
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> Self:
        self.sub = await self.world.api.services.bus.subscribe(f"meeting.{self.world.meeting_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sub.close()

    async def next(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            envelope = await asyncio.wait_for(self.sub.get(), timeout)
            event = dict(envelope.event)
            self.seen.append(event)
            if event["type"] == type_:
                return event
