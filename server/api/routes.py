"""Wires every feature module's routes into the app; each module owns its ``setup(app)``."""

from __future__ import annotations

from aiohttp import web

from .. import pages, ws
from . import (
    agenda,
    attendance,
    audit,
    documents,
    floor,
    media,
    meetings,
    minutes,
    points,
    presenter,
    recordings,
    share,
    users,
    votes,
)
from . import (
    annotations as annotation_routes,
)


def setup(app: web.Application) -> None:
    users.setup(app)
    points.setup(app)
    meetings.setup(app)
    # paperless documents
    agenda.setup(app)
    documents.setup(app)
    annotation_routes.setup(app)  # aliased: 'annotations' is a __future__ feature name
    presenter.setup(app)
    # meeting conduct
    floor.setup(app)
    attendance.setup(app)
    votes.setup(app)
    minutes.setup(app)
    audit.setup(app)
    ws.setup(app)
    media.setup(app)  # after ws: the media service hooks into the WebSocket hub
    recordings.setup(app)  # after media: recordings read the media service's sources
    share.setup(app)  # content sharing (meetings/share.py): REST beside the media service
    pages.setup(app)  # last: pages may add a catch-all static route
