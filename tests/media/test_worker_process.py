"""The media worker process and its control channel (media/worker.py, WorkerProcess in
media/pool.py): real processes, no mocks. Refused requests come back as MediaError and the
worker goes on; a garbage control line is skipped; a worker whose parent goes away (its
control channel ends) exits by itself; close() reaps it."""

from __future__ import annotations

import asyncio
import time

import pytest

from media import MediaConfig, MediaError
from media.pool import WorkerProcess


async def test_refusals_come_back_and_the_worker_goes_on() -> None:
    worker = WorkerProcess(MediaConfig(host_addresses=("127.0.0.1",)))
    try:
        with pytest.raises(MediaError) as refused:
            await worker.call("no_such_op")
        assert refused.value.code == "invalid_state"
        with pytest.raises(MediaError) as unknown:
            await worker.call("subscribe", room="m1", participant_id="nobody", source_id="x:0",
                              mid="0")
        assert unknown.value.code == "unknown_participant"
        with pytest.raises(MediaError) as bad_sdp:
            await worker.call("offer", room="m1", participant_id="p", sdp="garbage")
        assert bad_sdp.value.code in ("invalid_sdp", "no_media")
        assert worker._writer is not None
        worker._writer.write(b"{not json\n[1, 2]\n")  # skipped, not fatal
        assert await worker.call("sources", room="m1") == []
        assert worker.alive and worker.process.poll() is None
    finally:
        await worker.close()
    assert worker.process.returncode == 0 and not worker.alive


async def test_control_lines_longer_than_asyncios_default_limit_pass() -> None:
    """A control line over 64 KiB (asyncio's default line limit) is read whole on both sides:
    a ``stats`` event of a worker holding ~70 peers is that long, and an overflow used to make
    the pool declare the worker dead. Here: a 200 KB offer is refused for its size (so the
    worker read all of it), and the worker goes on."""
    worker = WorkerProcess(MediaConfig(host_addresses=("127.0.0.1",)))
    try:
        huge = "v=0\r\n" + "a=x-filler:" + "x" * 200_000 + "\r\n"
        with pytest.raises(MediaError) as refused:
            await worker.call("offer", room="m1", participant_id="p", sdp=huge)
        assert refused.value.code in ("invalid_sdp", "sdp_too_large")
        assert await worker.call("sources", room="m1") == []
        assert worker.alive and worker.process.poll() is None
    finally:
        await worker.close()


async def test_a_worker_exits_when_its_parent_goes_away() -> None:
    worker = WorkerProcess()
    await worker.start()
    await worker.call("stats")
    assert worker._writer is not None
    worker._writer.close()  # what the parent's death does to the channel
    deadline = time.monotonic() + 15
    while worker.process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert worker.process.returncode == 0
    await worker.close(timeout=1)


async def test_a_worker_reports_its_loop_lag_every_second() -> None:
    """The ``loop`` event (media/loop_monitor.py) reaches the parent: the server's
    ``diemcau_event_loop_lag_seconds{process="media_worker"}`` is fed from it."""
    events: list[dict[str, object]] = []
    worker = WorkerProcess(MediaConfig(host_addresses=("127.0.0.1",)), on_event=events.append)
    try:
        await worker.start()
        deadline = time.monotonic() + 10
        while not any(e.get("event") == "loop" for e in events) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        loop = next(e for e in events if e.get("event") == "loop")
        assert isinstance(loop["lag_max_s"], float) and 0 <= loop["lag_max_s"] < 5
        assert isinstance(loop["stalls"], int) and loop["stalls"] >= 0
    finally:
        await worker.close()
