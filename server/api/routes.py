"""Wires every feature module's routes into the app; each module owns its ``setup(app)``."""

from __future__ import annotations

from aiohttp import web

from .. import pages, ws
from . import meetings, points, users


def setup(app: web.Application) -> None:
    users.setup(app)
    points.setup(app)
    meetings.setup(app)
    ws.setup(app)
    pages.setup(app)  # last: pages may add a catch-all static route
