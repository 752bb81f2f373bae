"""Media test fixtures: loopback-only ICE, a room closed after each test, decode-error
counting."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import aioice.ice
import pytest

from media import MediaConfig, MediaEvent, Room
from tests.media.harness import DecodeErrorCounter


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out of host candidates; the tests use nothing else."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses",
                        lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def decode_errors() -> Iterator[DecodeErrorCounter]:
    handler = DecodeErrorCounter()
    logger = logging.getLogger("aiortc.rtcrtpreceiver")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def events() -> list[MediaEvent]:
    return []


@pytest.fixture
async def room(events: list[MediaEvent]) -> AsyncIterator[Room]:
    r = Room(MediaConfig(), on_event=events.append)
    try:
        yield r
    finally:
        await r.close()
