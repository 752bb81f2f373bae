"""Wires every feature module's routes into the app; each module owns its ``setup(app)``."""

from __future__ import annotations

from aiohttp import web

from .. import pages, ws
from . import (
    agenda,
    annotations,
    attendance,
    audit,
    documents,
    floor,
    meetings,
    minutes,
    points,
    presenter,
    users,
    votes,
)


def setup(app: web.Application) -> None:
    users.setup(app)
    points.setup(app)
    meetings.setup(app)
    # paperless documents
    agenda.setup(app)
    documents.setup(app)
    annotations.setup(app)
    presenter.setup(app)
    # meeting conduct
    floor.setup(app)
    attendance.setup(app)
    votes.setup(app)
    minutes.setup(app)
    audit.setup(app)
    ws.setup(app)
    pages.setup(app)  # last: pages may add a catch-all static route
