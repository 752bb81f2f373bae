"""WebSocket signalling: ``GET /ws`` (protocol in docs/protocol.md, messages in ``protocol``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from meetings.presence import MemoryPresence, PresenceStore

from ..keys import METRICS, SERVICES
from ..services import Services
from .hub import Hub

HUB: web.AppKey[Hub] = web.AppKey("ws_hub")


def make_presence(services: Services) -> PresenceStore:
    """The presence store for this deployment: in-process, or Redis with the Redis bus."""
    if services.config.bus.backend == "redis":
        from ..bus.redis_presence import RedisPresence  # type: ignore[import-not-found,unused-ignore]

        store: PresenceStore = RedisPresence(
            services.config.bus.redis_url,
            node_id=services.bus.node_id,
            prefix=services.config.bus.channel_prefix,
        )
        return store
    return MemoryPresence()


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    hub = Hub(
        services,
        presence=make_presence(services),
        metrics=app[METRICS],
        node_id=services.bus.node_id,
    )
    await hub.start()
    app[HUB] = hub
    services.presence.attach(hub.rooms.presence)  # conduct: "who is in meeting M now"
    try:
        yield
    finally:
        await hub.close()


async def _on_shutdown(app: web.Application) -> None:
    hub = app.get(HUB)
    if hub is not None:
        await hub.shutdown()


def setup(app: web.Application) -> None:
    from .handler import websocket

    app.router.add_get("/ws", websocket, name="ws")
    app.cleanup_ctx.append(_hub_ctx)
    app.on_shutdown.append(_on_shutdown)
