"""Operations endpoints: health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meetings.permissions import Action

from .. import __version__
from ..auth import authorize
from ..keys import METRICS, METRICS_NETWORKS, SERVICES
from ..openapi import build_spec, operation
from ..tls import remote_in
from .schemas import SCHEMAS

HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "version": {"type": "string"},
        "store": {"type": "string"},
        "bus": {"type": "string"},
        "checks": {"type": "object"},
    },
}


async def _timed(coro: object, timeout: float = 3.0) -> str:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(coro, timeout)  # type: ignore[arg-type]
    except Exception as exc:  # any failure of a dependency is reported, not raised
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return f"ok ({(time.perf_counter() - start) * 1000:.1f} ms)"


@operation("getHealth", "Liveness and dependency check", tags=["operations"], auth=False,
           response=HEALTH, errors=(), extra={"x-unhealthy-status": 503})
async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks = {"store": await _timed(services.db.ping()), "bus": await _timed(services.bus.ping())}
    ok = all(v.startswith("ok") for v in checks.values())
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "store": services.db.url.get_backend_name(),
        "bus": services.config.bus.backend,
        "checks": checks,
    }
    return web.json_response(body, status=200 if ok else 503)


@operation("getMetrics", "Prometheus metrics", tags=["operations"], auth=False, errors=(401, 403),
           response={"type": "string"}, response_content_type="text/plain",
           description="Served without a login to `server.metrics_allow` (loopback and private "
                       "networks by default: the province's monitoring); from anywhere else an "
                       "admin's bearer token is needed (they name meetings and bridge points).")
async def metrics(request: web.Request) -> web.Response:
    if not remote_in(request, request.app[METRICS_NETWORKS]):
        await authorize(request, Action.METRICS_VIEW)
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app, SCHEMAS))


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi_json)
