"""The video room of a meeting (phòng họp trực tuyến) for logged-in users:
``/meetings/{id}/video`` shows ``_video.html`` (main screen, self view, devices, toggles; the
chair's grid with "set main screen" for the meeting's staff).

``/meetings/{id}/room`` already belongs to a bridge point's conduct room (``pages_conduct``);
that page includes ``_video.html`` too, through the jinja global ``video_config`` registered
here. The page only reads; media runs over the meeting's WebSocket (``web/static/js/media.js``)
and the chair's choice is the REST command ``POST /api/meetings/{id}/main-screen``.
ICE servers come from the config (``media.ice_servers``; none by default) and are rendered as
JSON inside ``<script type="application/json">`` (jinja's ``tojson`` escapes ``<``, ``>``, ``&``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from aiohttp import web

from meetings.models import Meeting, Principal
from meetings.permissions import Action, MeetingScope, allowed, require

from .keys import CONFIG, SERVICES
from .pages import ENV_KEYS, _meeting_id, page, render, require_user

ICE_KEYS = ("urls", "username", "credential")


def ice_servers(raw: Any) -> list[dict[str, Any]]:
    """Config ICE servers as RTCIceServer dicts: a URL string, or a mapping with ``urls``
    (string or list) and optional ``username``/``credential``; anything else is dropped."""
    out: list[dict[str, Any]] = []
    for item in raw or ():
        if isinstance(item, str) and item:
            out.append({"urls": item})
        elif isinstance(item, Mapping) and item.get("urls"):
            urls = item["urls"]
            entry: dict[str, Any] = {"urls": urls if isinstance(urls, str) else [str(u) for u in urls]}
            entry.update({k: str(item[k]) for k in ICE_KEYS[1:] if item.get(k)})
            out.append(entry)
    return out


def configured_ice_servers(config: Any) -> list[dict[str, Any]]:
    """``media.ice_servers`` (comma-separated URLs) with ``ice_username``/``ice_credential``
    on the TURN ones, as RTCIceServer dicts; none by default (never a public STUN server)."""
    media = getattr(config, "media", None)
    if media is None:
        return []
    raw: list[Any] = []
    for url in getattr(media, "server_urls", ()):
        entry: dict[str, Any] = {"urls": url}
        if url.startswith(("turn:", "turns:")):
            entry.update({k: v for k, v in (("username", media.ice_username), ("credential", media.ice_credential)) if v})
        raw.append(entry)
    return ice_servers(raw)


def video_config(servers: Iterable[dict[str, Any]], meeting_id: int, *, point_code: str = "",
                 via_link: bool = False, publish: bool = True, grid: bool = False,
                 can_set_main: bool = False) -> dict[str, Any]:
    """What ``video.js`` reads from ``#video-data``: ``publish`` (camera and mic; observers only
    watch), ``grid`` (the staff's thumbnails), ``can_set_main`` (the chair's button)."""
    return {"meeting_id": meeting_id, "point_code": point_code, "via_link": via_link, "publish": publish,
            "grid": grid, "can_set_main": can_set_main, "ice_servers": list(servers)}


def video_room_context(meeting: Meeting, principal: Principal, scope: MeetingScope,
                       servers: list[dict[str, Any]]) -> dict[str, Any]:
    point = principal.point
    return {
        "meeting": meeting, "point_name": point.name if point else "",
        "video": video_config(servers, meeting.id, point_code=point.code if point else "",
                              publish=allowed(principal, Action.MEDIA_PUBLISH, scope),
                              grid=allowed(principal, Action.MEDIA_CONSOLE, scope),
                              can_set_main=allowed(principal, Action.MEDIA_MAIN_SCREEN, scope)),
    }


@page
async def video_room_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    scope = await request.app[SERVICES].calendar.scope(_meeting_id(request))
    require(principal, Action.MEETING_JOIN, scope)
    context = video_room_context(scope.meeting, principal, scope, configured_ice_servers(request.app[CONFIG]))
    return await render(request, "room_user.html", context, page="video")


def setup(app: web.Application) -> None:
    """The video room route and the ``video_config`` global; called by ``server/pages.py``
    after the jinja2 environments exist."""
    servers = configured_ice_servers(app[CONFIG])
    for key in ENV_KEYS.values():
        env: jinja2.Environment = app[key]
        env.globals["video_config"] = functools.partial(video_config, servers)
    app.router.add_get(r"/meetings/{meeting_id:\d+}/video", video_room_page)
