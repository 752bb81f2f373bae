"""The diemcau server: aiohttp app, REST API, WebSocket signalling, pages, CLI."""

__version__ = "0.1.0"
