"""Server-rendered pages (trang web): jinja2 templates in ``web/templates``, one per page.

Pages read through the domain services and the permission table, never write: every change
is a REST command sent by the page's ES module (``web/static/js``) with the CSRF header, and
live state (presence, chat) comes over the WebSocket. Context dicts are built by the plain
``*_context`` functions below so tests can call them without a server.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from meetings.errors import DomainError, Forbidden, NotFound, Unauthenticated
from meetings.models import (
    BridgePoint,
    Invitation,
    Meeting,
    MeetingState,
    PointLevel,
    PointNode,
    Principal,
    Role,
    User,
)
from meetings.permissions import Action, allowed, require

from .auth import (
    COOKIE,
    clear_session_cookie,
    csrf_token,
    optional_principal,
    principal_for_token,
    session_token,
    unsign_cookie,
)
from .i18n import (
    DISPLAY_TIMEZONE,
    LANG_COOKIE,
    LANG_COOKIE_MAX_AGE,
    LANGUAGE_NAMES,
    LEVEL_LABELS,
    LOCALES,
    N_,
    ROLE_LABELS,
    STATE_LABELS,
    WEB_ROOT,
    I18n,
    negotiate_locale,
)
from .keys import CONFIG, SERVICES

STATIC_ROOT = WEB_ROOT / "static"
TEMPLATE_ROOT = WEB_ROOT / "templates"
IMMUTABLE = "public, max-age=31536000, immutable"
MEETINGS_SHOWN = 300  # the latest meetings on /meetings (upcoming and open ones are among them)
_LOCALE = web.RequestKey("diemcau.locale", str)
PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- static files ---------------------------------------------------------------------------

@dataclass
class StaticFiles:
    """Files under ``web/static`` with content-hash versions for cache-busting URLs."""

    root: Path = STATIC_ROOT
    versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                rel = path.relative_to(self.root).as_posix()
                self.versions[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def url(self, rel: str) -> str:
        version = self.versions.get(rel)
        return f"/static/{quote(rel)}" + (f"?v={version}" if version else "")

    def import_map(self) -> dict[str, dict[str, str]]:
        """Maps every ES module to its versioned URL, so relative imports are cached too."""
        return {"imports": {f"/static/{rel}": self.url(rel) for rel in self.versions if rel.endswith(".js")}}

    def resolve(self, rel: str) -> Path | None:
        if rel not in self.versions:  # only files that existed at startup; no traversal possible
            return None
        return self.root / rel

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        path = self.resolve(rel)
        if path is None or not path.is_file():
            raise web.HTTPNotFound()
        response = web.FileResponse(path)
        versioned = request.query.get("v") == self.versions[rel]
        response.headers["Cache-Control"] = IMMUTABLE if versioned else "no-cache"
        return response


# --- the site: catalogs, one jinja2 environment per locale ----------------------------------

@dataclass
class Site:
    i18n: I18n
    static: StaticFiles
    env_keys: dict[str, web.AppKey[jinja2.Environment]]


SITE = web.AppKey("diemcau.site", Site)
# One jinja2 environment per locale, each with its catalog installed (keys are constants).
ENV_KEYS: dict[str, web.AppKey[jinja2.Environment]] = {
    locale: web.AppKey(f"diemcau.jinja2.{locale}", jinja2.Environment) for locale in LOCALES}


def make_environment(app: web.Application, site: Site, locale: str) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app, app_key=site.env_keys[locale], loader=jinja2.FileSystemLoader(str(TEMPLATE_ROOT)),
        autoescape=True, extensions=["jinja2.ext.i18n"], default_helpers=False,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.install_gettext_translations(site.i18n.translations[locale], newstyle=True)  # type: ignore[attr-defined]
    env.policies["ext.i18n.trimmed"] = True
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
    env.filters["datetime"] = functools.partial(site.i18n.format_datetime, locale)
    env.filters["timerange"] = functools.partial(site.i18n.format_range, locale)
    env.filters["isotime"] = lambda value: value.isoformat() if value else ""
    env.globals.update(
        static_url=site.static.url, LEVEL_LABELS=LEVEL_LABELS, STATE_LABELS=STATE_LABELS,
        ROLE_LABELS=ROLE_LABELS, LANGUAGE_NAMES=LANGUAGE_NAMES,
    )
    return env


def request_locale(request: web.Request) -> str:
    if _LOCALE not in request:
        request[_LOCALE] = negotiate_locale(
            query=request.query.get("lang"), cookie=request.cookies.get(LANG_COOKIE),
            accept_language=request.headers.get("Accept-Language"),
            default=request.app[CONFIG].i18n.default_locale,
        )
    return request[_LOCALE]  # type: ignore[no-any-return]


# --- context builders (plain functions) -----------------------------------------------------

def nav_items(principal: Principal | None) -> list[dict[str, str]]:
    items = []
    if principal is not None:
        items.append({"page": "meetings", "href": "/meetings", "label": N_("Meetings")})
    if allowed(principal, Action.POINTS_VIEW):
        items.append({"page": "points", "href": "/points", "label": N_("Bridge points")})
    if allowed(principal, Action.AUDIT_VIEW):
        items.append({"page": "audit", "href": "/audit", "label": N_("Audit log")})
    return items


def language_links(path: str, query: dict[str, str], current: str) -> list[dict[str, Any]]:
    links = []
    for locale in LOCALES:
        params = {k: v for k, v in query.items() if k != "lang"}
        params["lang"] = locale
        links.append({"locale": locale, "name": LANGUAGE_NAMES[locale], "current": locale == current,
                      "href": f"{path}?{urlencode(params)}"})
    return links


def base_context(*, site: Site, locale: str, principal: Principal | None, csrf: str, nonce: str,
                 page: str, path: str = "/", query: dict[str, str] | None = None) -> dict[str, Any]:
    """What the layout (``base.html``) needs on every page."""
    user = principal.user if principal else None
    return {
        "locale": locale, "page": page, "principal": principal, "user": user,
        "display_name": principal.label if principal else "",
        "role": user.role.value if user else ("point" if principal else ""),
        "csrf_token": csrf, "csp_nonce": nonce, "nav": nav_items(principal),
        "languages": language_links(path, query or {}, locale),
        "js_catalog": site.i18n.js_catalog(locale), "import_map": site.static.import_map(),
    }


def meeting_sections(meetings: Iterable[Meeting]) -> list[dict[str, Any]]:
    """Meetings in session first, then upcoming (soonest first), then ended (latest first)."""
    by_state: dict[MeetingState, list[Meeting]] = {s: [] for s in MeetingState}
    for meeting in meetings:
        by_state[meeting.state].append(meeting)
    by_state[MeetingState.SCHEDULED].sort(key=lambda m: (m.starts_at, m.id))
    by_state[MeetingState.CLOSED].sort(key=lambda m: (m.starts_at, m.id), reverse=True)
    headings = {MeetingState.OPEN: N_("In session now"), MeetingState.SCHEDULED: N_("Upcoming"),
                MeetingState.CLOSED: N_("Ended")}
    order = (MeetingState.OPEN, MeetingState.SCHEDULED, MeetingState.CLOSED)
    return [{"state": s.value, "heading": headings[s], "meetings": by_state[s]} for s in order if by_state[s]]


def utc_offset(now: datetime | None = None) -> str:
    """The display time zone's offset as ``+07:00``, for ``datetime-local`` inputs."""
    offset = (now or datetime.now(ZoneInfo(DISPLAY_TIMEZONE))).astimezone(ZoneInfo(DISPLAY_TIMEZONE)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def meetings_context(meetings: list[Meeting], *, principal: Principal, users: list[User],
                     points: list[BridgePoint]) -> dict[str, Any]:
    can_create = allowed(principal, Action.MEETING_CREATE)
    chairs = [u for u in users if u.role in (Role.CHAIR, Role.ADMIN) and not u.disabled]
    secretaries = [u for u in users if u.role in (Role.SECRETARY, Role.CHAIR, Role.ADMIN) and not u.disabled]
    me = principal.user
    return {
        "sections": meeting_sections(meetings), "count": len(meetings), "can_create": can_create,
        "chairs": chairs if can_create else [], "secretaries": secretaries if can_create else [],
        "host_points": [p for p in points if p.enabled] if can_create else [],
        "default_chair": me.username if me and me.role is Role.CHAIR else "",
        "default_secretary": me.username if me and me.role is Role.SECRETARY else "",
        "utc_offset": utc_offset(),
    }


@dataclass(frozen=True)
class PointGroup:
    """Invited points of one district (or the province level), for the presence board."""

    code: str
    name: str
    level: PointLevel | None
    invitations: list[Invitation]


def group_invitations(invitations: list[Invitation], points: Iterable[BridgePoint]) -> list[PointGroup]:
    """Invited points grouped by district: a commune under its district, a district with its
    own communes, provinces (and orphans) in their own group first."""
    by_code = {p.code: p for p in points}
    groups: dict[str, tuple[BridgePoint | None, list[Invitation]]] = {}
    for inv in invitations:
        point = inv.point
        if point.level is PointLevel.COMMUNE and point.parent_code:
            key, head = point.parent_code, by_code.get(point.parent_code)
        elif point.level is PointLevel.DISTRICT:
            key, head = point.code, point
        else:
            key, head = "", None
        groups.setdefault(key, (head, []))[1].append(inv)
    out = []
    for key, (head, invs) in groups.items():
        invs.sort(key=lambda i: (i.point.level.rank, i.point.code))
        out.append(PointGroup(code=key, name=head.name if head else "", level=head.level if head else None,
                              invitations=invs))
    return sorted(out, key=lambda g: (g.code != "", g.code))


def meeting_context(meeting: Meeting, *, principal: Principal, scope: Any, invitations: list[Invitation],
                    points: list[BridgePoint], people: dict[int, User]) -> dict[str, Any]:
    by_id = {p.id: p for p in points}
    chair = people.get(meeting.chair_id) if meeting.chair_id else None
    secretary = people.get(meeting.secretary_id) if meeting.secretary_id else None
    return {
        "meeting": meeting,
        "chair": chair, "secretary": secretary,
        "host_point": by_id.get(meeting.host_point_id) if meeting.host_point_id else None,
        "groups": group_invitations(invitations, points),
        "invited_count": len(invitations),
        "can_invite": allowed(principal, Action.MEETING_INVITE, scope) and meeting.state is not MeetingState.CLOSED,
        "can_chat": allowed(principal, Action.CHAT_SEND, scope) and meeting.state is not MeetingState.CLOSED,
        "districts": sorted((p for p in points if p.level is PointLevel.DISTRICT and p.enabled), key=lambda p: p.code),
        "levels": [level.value for level in PointLevel],
        "meeting_data": {"id": meeting.id, "state": meeting.state.value},
    }


def points_context(tree: list[PointNode], *, principal: Principal) -> dict[str, Any]:
    def count(nodes: list[PointNode]) -> int:
        return sum(1 + count(n.children) for n in nodes)

    return {"tree": tree, "total": count(tree), "can_manage": allowed(principal, Action.POINTS_MANAGE)}


def join_context(meeting: Meeting, point: BridgePoint, token: str) -> dict[str, Any]:
    return {"meeting": meeting, "point": point, "room_url": f"/join/{quote(token)}/room"}


def safe_next(value: str | None) -> str:
    """A local path to return to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/meetings"
    return value


# --- rendering ------------------------------------------------------------------------------

async def _principal_or_none(request: web.Request) -> Principal | None:
    try:
        return await optional_principal(request)
    except DomainError:
        return None


async def render(request: web.Request, template: str, context: dict[str, Any], *, page: str,
                 status: int = 200) -> web.Response:
    site = request.app[SITE]
    locale = request_locale(request)
    principal = await _principal_or_none(request)
    token = session_token(request)
    csrf = csrf_token(request.app[SERVICES].secret, token) if token and principal else ""
    nonce = secrets.token_urlsafe(16)
    full = {**base_context(site=site, locale=locale, principal=principal, csrf=csrf, nonce=nonce, page=page,
                           path=request.path, query=dict(request.query)), **context}
    response = aiohttp_jinja2.render_template(template, request, full, app_key=site.env_keys[locale], status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data: blob:; "
        f"media-src 'self' blob:; connect-src 'self' ws://{request.host} wss://{request.host}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    lang = request.query.get("lang", "")
    if lang in LOCALES and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, path="/", samesite="Lax")
    return response


def login_redirect(request: web.Request) -> web.HTTPFound:
    target = request.path_qs
    return web.HTTPFound("/login?" + urlencode({"next": target}) if target not in ("/", "/meetings") else "/login")


async def error_page(request: web.Request, status: int, code: str) -> web.Response:
    titles = {403: N_("Access denied"), 404: N_("Page not found"), 410: N_("Link no longer valid")}
    return await render(request, "error.html", {"status": status, "code": code, "title": titles.get(status, N_("Error"))},
                        page="error", status=status)


def page(handler: PageHandler) -> PageHandler:
    """Domain errors as pages: login redirect, translated 403 / 404."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Unauthenticated:
            response = login_redirect(request)
            if COOKIE in request.cookies:
                clear_session_cookie(response)
            raise response from None
        except Forbidden as exc:
            return await error_page(request, 403, exc.code)
        except NotFound as exc:
            return await error_page(request, 404, exc.code)

    return wrapper


async def require_user(request: web.Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


# --- handlers -------------------------------------------------------------------------------

async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/meetings")


@page
async def login_page(request: web.Request) -> web.StreamResponse:
    next_url = safe_next(request.query.get("next"))
    if await _principal_or_none(request) is not None:
        raise web.HTTPFound(next_url)
    return await render(request, "login.html", {"next": next_url}, page="login")


@page
async def logout_page(request: web.Request) -> web.StreamResponse:
    if await _principal_or_none(request) is None:
        raise web.HTTPFound("/login")
    return await render(request, "logout.html", {}, page="logout")


async def logout_submit(request: web.Request) -> web.StreamResponse:
    """A plain form post (works without JS); the form carries the CSRF token."""
    services = request.app[SERVICES]
    form = await request.post()
    raw = request.cookies.get(COOKIE)
    token = unsign_cookie(services.secret, raw) if raw else None
    origin = request.headers.get("Origin")
    if token is not None:
        sent = str(form.get("csrf_token", ""))
        same_origin = not origin or origin == "null" or origin.rstrip("/") == f"{request.scheme}://{request.host}"
        if not same_origin or not hmac.compare_digest(sent, csrf_token(services.secret, token)):
            return await error_page(request, 403, "csrf_failed")
        try:
            principal = await principal_for_token(request, token)
            if principal.session_id is not None:
                await services.accounts.close_session(principal.session_id)
        except Unauthenticated:
            pass
    response = web.HTTPSeeOther("/login")
    clear_session_cookie(response)
    raise response


@page
async def meetings_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    require(principal, Action.MEETING_LIST)
    services = request.app[SERVICES]
    meetings = await services.calendar.list(limit=MEETINGS_SHOWN, **visible_meetings(principal))
    creating = allowed(principal, Action.MEETING_CREATE)
    users = await services.accounts.list_users() if creating else []
    points = await services.registry.list(enabled_only=True) if creating else []
    return await render(request, "meetings.html", meetings_context(meetings, principal=principal, users=users,
                                                                   points=points), page="meetings")


def visible_meetings(principal: Principal) -> dict[str, Any]:
    """The list filter for a principal (same rule as ``GET /api/meetings``): admins see all;
    an invitation link its meeting; others what they staff or what invites their point."""
    if principal.role is Role.ADMIN:
        return {}
    point_ids = {principal.point.id} if principal.point else set()
    if principal.meeting_id is not None:
        return {"meeting_id": principal.meeting_id, "point_ids": point_ids}
    return {"point_ids": point_ids, "user_id": principal.user.id if principal.user else None}


def _meeting_id(request: web.Request) -> int:
    try:
        return int(request.match_info["meeting_id"])
    except ValueError:
        raise NotFound("no such meeting", code="meeting_not_found") from None


@page
async def meeting_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    services = request.app[SERVICES]
    scope = await services.calendar.scope(_meeting_id(request))
    require(principal, Action.MEETING_VIEW, scope)
    meeting = scope.meeting
    invitations = await services.calendar.invitations(meeting.id)
    points = await services.registry.list()
    people: dict[int, User] = {}
    for user_id in {meeting.chair_id, meeting.secretary_id}:
        if user_id is None:
            continue
        try:
            people[user_id] = await services.accounts.get(user_id)
        except NotFound:
            pass
    context = meeting_context(meeting, principal=principal, scope=scope, invitations=invitations,
                              points=points, people=people)
    return await render(request, "meeting.html", context, page="meeting")


@page
async def points_page(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    require(principal, Action.POINTS_VIEW)
    tree = await request.app[SERVICES].registry.tree()
    return await render(request, "points.html", points_context(tree, principal=principal), page="points")


async def join_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    services = request.app[SERVICES]
    try:
        if not token.startswith("dci_"):
            raise Unauthenticated("not an invitation link", code="invalid_token")
        point, meeting_id = await services.calendar.resolve_invitation(token)
        meeting = await services.calendar.get(meeting_id)
    except (Unauthenticated, NotFound) as exc:
        return await error_page(request, 410 if exc.code in ("token_expired", "meeting_closed") else 404, exc.code)
    response = await render(request, "join.html", join_context(meeting, point, token), page="join")
    return response


def setup(app: web.Application) -> None:
    """Page routes, ``/static/``, the catalogs and one jinja2 environment per locale."""
    config = app[CONFIG]
    i18n = I18n(default_locale=config.i18n.default_locale)
    static = StaticFiles()
    site = Site(i18n=i18n, static=static, env_keys=ENV_KEYS)
    app[SITE] = site
    for locale in LOCALES:
        make_environment(app, site, locale)
    app.router.add_get("/", index)
    app.router.add_get("/login", login_page)
    app.router.add_get("/logout", logout_page)
    app.router.add_post("/logout", logout_submit)
    app.router.add_get("/meetings", meetings_page)
    app.router.add_get(r"/meetings/{meeting_id:\d+}", meeting_page)
    app.router.add_get("/points", points_page)
    app.router.add_get("/join/{token}", join_page)
    from . import pages_conduct  # conduct pages: console, room, audit (imports this module)
    pages_conduct.setup(app)
    from . import pages_documents  # the paperless pages: viewer (imports this module)
    pages_documents.setup(app)
    from . import pages_room  # the video room (and the video_config global for room.html)
    pages_room.setup(app)
    from . import pages_monitor  # the monitoring page (giám sát) of a meeting
    pages_monitor.setup(app)
    app.router.add_get("/static/{path:.+}", static.handle)
