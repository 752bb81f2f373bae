"""Wires the REST modules (and later the pages and WebSocket) into the app."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register every feature module's routes. Each module owns its ``setup(app)``."""
    return None
