"""The application factory: ``create_app(config)`` wires routes, middlewares and services."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .api import auth_routes, ops, routes
from .config import Config
from .errors import error_middleware
from .keys import CONFIG, LOGIN_LIMIT_ADDR, LOGIN_LIMIT_USER, METRICS, METRICS_NETWORKS, SERVICES
from .metrics import Metrics
from .ratelimit import SlidingWindow
from .services import Services
from .tls import metrics_networks, proxy_middleware, trusted_networks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.http_requests.labels(request.method, route, str(status)).inc()
        metrics.http_latency.labels(route).observe(time.perf_counter() - start)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.scheme == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    services = await Services.start(app[CONFIG])
    app[SERVICES] = services
    try:
        yield
    finally:
        await services.close()


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[proxy_middleware(trusted_networks(config)), metrics_middleware, security_headers,
                     error_middleware],
        client_max_size=1024 * 1024,
    )
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[METRICS_NETWORKS] = metrics_networks(config)
    app[LOGIN_LIMIT_USER] = SlidingWindow(config.auth.login_attempts_per_minute)
    app[LOGIN_LIMIT_ADDR] = SlidingWindow(config.auth.login_attempts_per_minute * 5)
    app.cleanup_ctx.append(_services_ctx)
    ops.setup(app)
    auth_routes.setup(app)
    routes.setup(app)
    return app
