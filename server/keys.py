"""Typed application state keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import Config
from .ratelimit import SlidingWindow

if TYPE_CHECKING:
    from .metrics import Metrics
    from .services import Services

CONFIG = web.AppKey("config", Config)
SERVICES: web.AppKey[Services] = web.AppKey("services")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
METRICS_NETWORKS: web.AppKey[tuple[Any, ...]] = web.AppKey("metrics_networks")
"Who may read /metrics without a login (``server.metrics_allow``)."
LOGIN_LIMIT_USER = web.AppKey("login_limit_user", SlidingWindow)
LOGIN_LIMIT_ADDR = web.AppKey("login_limit_addr", SlidingWindow)
