"""Transport security: the TLS context for ``diemcau serve`` and trusted reverse proxies."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from .config import Config, ConfigError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 minimum), or None for plain HTTP."""
    cert, key = config.server.tls_cert, config.server.tls_key
    if not cert and not key:
        return None
    if not cert or not key:
        missing = "server.tls_cert" if not cert else "server.tls_key"
        raise ConfigError(f"{missing}: set both server.tls_cert and server.tls_key, or neither")
    for name, value in (("server.tls_cert", cert), ("server.tls_key", key)):
        if not Path(value).is_file():
            raise ConfigError(f"{name}: no readable file at {value!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"server.tls_key: cannot load the certificate and key: {exc}") from None
    return context


def parse_networks(key: str, values: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or networks of a config key; a bad one names the key."""
    networks = []
    for text in values:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{key}: {text!r} is not an address or network") from None
    return tuple(networks)


def trusted_networks(config: Config) -> tuple[Network, ...]:
    return parse_networks("server.trusted_proxies", config.server.trusted_proxies)


def metrics_networks(config: Config) -> tuple[Network, ...]:
    return parse_networks("server.metrics_allow", config.server.metrics_allow)


def remote_in(request: web.Request, networks: tuple[Network, ...]) -> bool:
    """Is the caller (the real client when a trusted proxy forwarded it) in ``networks``?"""
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer in net for net in networks)


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def proxy_middleware(networks: tuple[Network, ...]) -> Middleware:
    """Believe ``X-Forwarded-*`` only from the configured proxies (and never by default)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if networks and remote_in(request, networks):
            changes: dict[str, str] = {}
            proto = _first(request.headers.get("X-Forwarded-Proto", "")).lower()
            if proto in ("http", "https"):
                changes["scheme"] = proto
            host = _first(request.headers.get("X-Forwarded-Host", ""))
            if host:
                changes["host"] = host
            client = _first(request.headers.get("X-Forwarded-For", ""))
            if client:
                changes["remote"] = client
            if changes:
                request = request.clone(**changes)  # type: ignore[arg-type]
        return await handler(request)

    return middleware
