"""Who may read /metrics (``server.metrics_allow``): the series name meetings and bridge
points, so they are served without a login only to loopback and the private networks by
default; anyone else needs an admin's bearer token. Behind a trusted proxy the real client's
address is the one checked. Real app, real HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import ConfigError
from server.keys import SERVICES
from tests.conftest import Api, make_config

ClientFactory = Callable[..., Awaitable[TestClient]]


async def client_with(aiohttp_client: ClientFactory, tmp_path: Path, **overrides: Any) -> Api:
    client = await aiohttp_client(create_app(make_config(tmp_path, **overrides)))
    return Api(client, client.app[SERVICES])


async def test_loopback_reads_metrics_by_default(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    api = await client_with(aiohttp_client, tmp_path)
    resp = await api.client.get("/metrics")
    assert resp.status == 200
    assert "diemcau_ws_connections" in await resp.text()


async def test_outside_the_allowed_networks_only_an_admin_reads_them(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    api = await client_with(aiohttp_client, tmp_path, **{"server.metrics_allow": ["10.20.0.0/16"]})
    resp = await api.client.get("/metrics")  # 127.0.0.1 is not in 10.20.0.0/16
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
    chair = await api.user("chutri", "chair")
    resp = await api.client.get("/metrics", headers=Api.bearer(chair))
    assert resp.status == 403
    admin = await api.user("quantri", "admin")
    resp = await api.client.get("/metrics", headers=Api.bearer(admin))
    assert resp.status == 200 and "diemcau_http_requests_total" in await resp.text()


async def test_behind_a_trusted_proxy_the_real_client_is_checked(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    api = await client_with(aiohttp_client, tmp_path, **{"server.trusted_proxies": ["127.0.0.1"]})
    outside = await api.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert outside.status == 401
    inside = await api.client.get("/metrics", headers={"X-Forwarded-For": "192.168.10.25"})
    assert inside.status == 200


def test_a_bad_network_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as bad:
        create_app(make_config(tmp_path, **{"server.metrics_allow": ["10.0.0.0/33"]}))
    assert "server.metrics_allow" in str(bad.value)
