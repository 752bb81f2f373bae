"""Shared fixtures: a real app on a free loopback port, accounts, logins."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Config, load_config
from server.keys import SERVICES
from server.services import Services

pytest_plugins = ["tests.fixtures.redis", "tests.fixtures.browser", "tests.fixtures.pdfs"]

PASSWORD = "mat-khau-thu-nghiem"  # test accounts' password (>= 10 chars)
REPO = Path(__file__).resolve().parent.parent


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    """A config for tests: data under tmp_path, free port, nothing from the environment."""
    base = {"server.data_dir": str(tmp_path / "data"), "server.port": 0, "auth.secret_key": "test-secret"}
    base.update(overrides)
    return load_config(None, env={}, overrides=base)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@dataclass
class Api:
    """A test client plus helpers to create accounts and log in."""

    client: TestClient
    services: Services

    async def user(self, username: str, role: str, *, point_code: str | None = None,
                   display_name: str = "") -> dict[str, Any]:
        await self.services.accounts.create_user(username, PASSWORD, role, point_code=point_code,
                                                 display_name=display_name or username)
        return await self.login(username)

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        resp = await self.client.post("/api/auth/login", json={"username": username, "password": password})
        assert resp.status == 200, await resp.text()
        return await resp.json()

    @staticmethod
    def bearer(login: dict[str, Any] | str) -> dict[str, str]:
        token = login if isinstance(login, str) else login["token"]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config) -> Api:
    client = await aiohttp_client(create_app(config))
    return Api(client, client.app[SERVICES])


@pytest.fixture
async def services(config: Config) -> AsyncIterator[Services]:
    svc = await Services.start(config)
    try:
        yield svc
    finally:
        await svc.close()


def require_env(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")
