"""Typed application state keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .config import Config
from .ratelimit import SlidingWindow

if TYPE_CHECKING:
    from .metrics import Metrics
    from .services import Services

CONFIG = web.AppKey("config", Config)
SERVICES: web.AppKey[Services] = web.AppKey("services")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
LOGIN_LIMIT_USER = web.AppKey("login_limit_user", SlidingWindow)
LOGIN_LIMIT_ADDR = web.AppKey("login_limit_addr", SlidingWindow)
