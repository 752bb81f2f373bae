"""Meeting recordings through the real app: real aiortc publishers on 127.0.0.1, the chair's
REST commands, the recorder process, the file read back with PyAV (docs/recording.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from meetings.clock import utcnow
from meetings.recordings import Recordings
from meetings.store.tables_recordings import recordings
from server.app import create_app
from server.config import Config
from server.keys import SERVICES
from server.recording_service import RECORDING
from server.services import Services
from tests.conftest import Api
from tests.server.page_world import build_page_world
from tests.server.test_media_kit import MediaPeer, media_config, set_main
from tests.server.test_ws_kit import Scene, build_scene

W, H, FPS = 640, 360, 10


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return media_config(tmp_path, **{"recording.width": W, "recording.height": H, "recording.fps": FPS,
                                     "recording.video_bitrate": 600000})


def url(scene: Scene, tail: str = "") -> str:
    return f"/api/meetings/{scene.meeting_id}/recordings{tail}"


async def start(scene: Scene, token: str) -> Any:
    return await scene.api.client.post(url(scene), headers=scene.api.bearer(token))


async def stop(scene: Scene, token: str, rid: int) -> Any:
    return await scene.api.client.post(url(scene, f"/{rid}/stop"), headers=scene.api.bearer(token))


async def listing(scene: Scene) -> list[dict[str, Any]]:
    resp = await scene.api.client.get(url(scene), headers=scene.api.bearer(scene.chair))
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["recordings"])


async def test_ten_second_recording_follows_the_main_screen(api: Api) -> None:
    scene = await build_scene(api)
    await set_main(scene, "D1")
    d1 = await MediaPeer.join(scene, scene.d1_device, "D1")
    d2 = await MediaPeer.join(scene, scene.d2_device, "D2")
    try:
        await d1.offer(cameras=(("camera", 160, 120, 10),), mic=True, main=1, audio=1)
        await d2.offer(cameras=(("camera", 176, 144, 10),), mic=True, main=1, audio=1)
        await asyncio.sleep(1.0)  # media flowing, speakers ranked
        mark = d2.inbox.mark()
        resp = await start(scene, scene.chair)
        assert resp.status == 201, await resp.text()
        rec = await resp.json()
        assert rec["status"] == "recording" and (rec["width"], rec["height"], rec["fps"]) == (W, H, FPS)
        for peer in (d1, d2):  # every session sees the indicator event
            await peer.inbox.wait(lambda m: m.get("type") == "event"
                                  and m["event"].get("type") == "recording.started", since=0)
        await asyncio.sleep(5.0)
        await set_main(scene, "D2")
        await asyncio.sleep(5.0)
        resp = await stop(scene, scene.chair, rec["id"])
        assert resp.status == 200, await resp.text()
        done = await resp.json()
        await d2.inbox.wait(lambda m: m.get("type") == "event"
                            and m["event"].get("type") == "recording.stopped", since=mark)
    finally:
        await asyncio.gather(d1.close(), d2.close(), return_exceptions=True)
    assert done["status"] == "completed" and done["url"] == f"/api/recordings/{rec['id']}/file"
    path = api.client.app[RECORDING].dir / f"hop-{scene.meeting_id}-{rec['id']}.webm"
    assert done["size_bytes"] == path.stat().st_size > 10000
    with av.open(str(path)) as container:
        assert container.metadata.get("title") == "Hội nghị giao ban tháng 3"
        assert container.metadata.get("MEETING_ID") == str(scene.meeting_id)  # Matroska tags: upper case
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        video = container.streams.video[0]
        assert video.codec_context.name == "vp8" and (video.width, video.height) == (W, H)
        assert container.streams.audio[0].codec_context.name in ("opus", "libopus")
        duration = float(container.duration or 0) / 1_000_000
        frames = [f.to_ndarray() for f in container.decode(video=0)]
    assert abs(duration - 10.0) <= 1.5, duration
    assert abs(done["duration_s"] - 10.0) <= 1.5, done
    assert abs(len(frames) - FPS * duration) <= FPS, (len(frames), duration)
    # the main screen as it switched, letterboxed to 640x360: D1's 160x120 (4:3) fills columns
    # 80..559, D2's 176x144 (11:9) only 100..539: column 90 is picture, then black bars
    edge = [float(f[:H, 90].mean()) for f in frames]
    middle = [float(f[:H, W // 2].mean()) for f in frames]
    assert min(edge[FPS:FPS * 4]) > 30, edge[:FPS * 5]  # D1 from the start
    assert max(edge[-FPS * 3:]) < 25 and min(middle[-FPS * 3:]) > 30  # D2 at the end
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert np.abs(samples).max() > 0.02  # the speakers' tones, mixed: not silence


async def test_recording_commands_permissions_download_and_minutes(api: Api) -> None:
    scene = await build_scene(api)
    c = api.client
    d1, _ = await scene.joined_peer(scene.d1_device, "D1")
    observer, _ = await scene.joined_peer(scene.observer, "observer")
    for token in (scene.delegate, scene.observer, scene.outsider, scene.d1_device, scene.d1_link):
        assert (await start(scene, token)).status == 403
    resp = await start(scene, scene.chair)
    assert resp.status == 201, await resp.text()
    rec = await resp.json()
    for peer in (d1, observer):
        event = await peer.expect("event")
        assert event["event"]["type"] == "recording.started"
        assert event["event"]["recording_id"] == rec["id"]
    resp = await start(scene, scene.chair)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "recording_running"
    # everyone in the meeting may see that it is recorded; only staff list and download
    status = await (await c.get(url(scene, "/status"), headers=api.bearer(scene.delegate))).json()
    assert status == {"recording": True, "recording_id": rec["id"], "started_at": rec["started_at"]}
    assert (await c.get(url(scene), headers=api.bearer(scene.delegate))).status == 403
    assert (await c.get(url(scene, "/status"), headers=api.bearer(scene.outsider))).status == 403
    assert (await stop(scene, scene.delegate, rec["id"])).status == 403
    resp = await stop(scene, scene.chair, 999999)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "recording_not_found"
    await asyncio.sleep(2.0)
    resp = await stop(scene, scene.chair, rec["id"])
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "completed"
    resp = await stop(scene, scene.chair, rec["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "recording_not_running"
    (listed,) = await listing(scene)
    assert listed["status"] == "completed" and 1.0 < listed["duration_s"] < 4.0
    # download: whole, then a Range (206 with exactly those bytes); delegates and outsiders not
    file_url = f"/api/recordings/{rec['id']}/file"
    whole = await c.get(file_url, headers=api.bearer(scene.chair))
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/webm"
    assert "ghi-hinh-hop-" in whole.headers["Content-Disposition"] and whole.headers.get("ETag")
    body = await whole.read()
    assert len(body) == listed["size_bytes"]
    part = await c.get(file_url, headers={**api.bearer(scene.chair), "Range": "bytes=100-1099"})
    assert part.status == 206 and await part.read() == body[100:1100]
    assert (await c.get(file_url, headers=api.bearer(scene.delegate))).status == 403
    assert (await c.get(file_url, headers=api.bearer(scene.outsider))).status == 403
    assert (await c.get("/api/recordings/424242/file", headers=api.bearer(scene.chair))).status == 404
    # the minutes mention it: JSON and the PDF's text
    minutes = await (await c.get(f"/api/meetings/{scene.meeting_id}/minutes",
                                 headers=api.bearer(scene.chair))).json()
    assert [r["id"] for r in minutes["recordings"]] == [rec["id"]]
    made = await c.post(f"/api/meetings/{scene.meeting_id}/minutes", headers=api.bearer(scene.chair), json={})
    assert made.status == 201, await made.text()
    pdf = await (await c.get((await made.json())["url"], headers=api.bearer(scene.chair))).read()
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "Cuộc họp được ghi hình (1 bản ghi)" in " ".join(text.split())
    # audited
    entries = await api.services.audit.list(meeting_id=scene.meeting_id)
    assert {e.action for e in entries} >= {"recording.start", "recording.stop"}
    # turned off by configuration: refused with a clear code
    service = api.client.app[RECORDING]
    service.settings = dataclasses.replace(service.settings, enabled=False)
    resp = await start(scene, scene.chair)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "recording_disabled"
    await d1.close()
    await observer.close()


async def test_meeting_close_stops_and_finalises_the_recording(api: Api) -> None:
    scene = await build_scene(api)
    c = api.client
    assert (await c.post(f"/api/meetings/{scene.meeting_id}/open", headers=api.bearer(scene.chair))).status == 200
    rec = await (await start(scene, scene.chair)).json()
    await asyncio.sleep(1.5)
    assert (await c.post(f"/api/meetings/{scene.meeting_id}/close", headers=api.bearer(scene.chair))).status == 200
    for _ in range(100):
        (listed,) = await listing(scene)
        if listed["status"] != "recording":
            break
        await asyncio.sleep(0.1)
    assert listed["status"] == "completed" and listed["stop_reason"] == "meeting_closed"
    path = api.client.app[RECORDING].dir / f"hop-{scene.meeting_id}-{rec['id']}.webm"
    with av.open(str(path)) as container:
        assert float(container.duration or 0) / 1e6 > 1.0
    resp = await start(scene, scene.chair)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "meeting_closed"


async def test_a_dying_recorder_marks_the_recording_failed(api: Api) -> None:
    scene = await build_scene(api)
    d1, _ = await scene.joined_peer(scene.d1_device, "D1")
    rec = await (await start(scene, scene.chair)).json()
    await d1.expect("event")
    service = api.client.app[RECORDING]
    process = service._active[scene.meeting_id].process.process
    assert process is not None
    process.kill()
    event = await d1.expect("event")
    assert event["event"]["type"] == "recording.stopped" and event["event"]["status"] == "failed"
    (listed,) = await listing(scene)
    assert listed["status"] == "failed" and listed["url"] is None
    assert (await api.client.get(f"/api/recordings/{rec['id']}/file",
                                 headers=api.bearer(scene.chair))).status == 404
    # the server and the meeting go on: the session still works, a new recording starts
    resp = await start(scene, scene.chair)
    assert resp.status == 201, await resp.text()
    rec2 = await resp.json()
    assert (await stop(scene, scene.chair, rec2["id"])).status == 200
    await d1.close()


def badge(html: str) -> str:
    match = re.search(r'<span class="badge badge-lg recording-badge"[^>]*>[^<]*</span>', html)
    assert match, "no recording badge"
    return match.group(0)


async def test_pages_show_the_recording_badge(api: Api) -> None:
    world = await build_page_world(
        api, points=[("T17", "Tỉnh Hòa Bình", "province", None), ("H1", "Huyện Tân Lạc", "district", "T17"),
                ("X1", "Xã Đông Lai", "commune", "H1")],
        accounts={"chair": ("chair", None, "Nguyễn Văn Hùng"), "secretary": ("secretary", None, "Trần Thị Lan"),
                  "delegate": ("delegate", "X1", "Bùi Văn Đức")},
        invite=("X1",))
    chair = (await api.login("chair"))["token"]
    base = f"/api/meetings/{world.meeting_id}/recordings"
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/console", "chair")
    assert status == 200 and re.search(r"\shidden>", badge(html))
    assert re.search(r'id="recording-start"\s*>', html) and 'id="recording-stop" hidden' in html
    resp = await api.client.post(base, headers=api.bearer(chair))
    assert resp.status == 201, await resp.text()
    rid = (await resp.json())["id"]
    for path, who in ((f"/meetings/{world.meeting_id}/console", "chair"),
                      (f"/meetings/{world.meeting_id}/room", "delegate")):
        status, html, _ = await world.get(path, who)
        assert status == 200, html
        shown = badge(html)
        assert not re.search(r"\shidden>", shown) and "● Đang ghi hình" in shown, shown
        assert "js/recording.js" in html and "css/recording.css" in html
    assert 'id="recording-start" hidden' in (await world.get(f"/meetings/{world.meeting_id}/console", "chair"))[1]
    assert "recording-start" not in (await world.get(f"/meetings/{world.meeting_id}/room", "delegate"))[1]
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/room?lang=en", "delegate")
    assert status == 200 and "● Recording" in badge(html)
    assert (await api.client.post(f"{base}/{rid}/stop", headers=api.bearer(chair))).status == 200
    status, html, _ = await world.get(f"/meetings/{world.meeting_id}/room", "delegate")
    assert re.search(r"\shidden>", badge(html))


async def test_shutdown_finalises_and_a_restart_marks_leftovers_interrupted(
        aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config) -> None:
    client = await aiohttp_client(create_app(config))
    api = Api(client, client.app[SERVICES])
    scene = await build_scene(api)
    rec = await (await start(scene, scene.chair)).json()
    path = client.app[RECORDING].dir / f"hop-{scene.meeting_id}-{rec['id']}.webm"
    node = client.app[RECORDING].node
    await asyncio.sleep(1.5)
    await client.close()  # the app's cleanup: the recording is stopped and finalised
    services = await Services.start(config)
    try:
        domain = Recordings(services.db, services.bus)
        (done,) = await domain.list(scene.meeting_id)
        assert (done.status, done.stop_reason) == ("completed", "shutdown") and path.exists()
        with av.open(str(path)) as container:
            assert float(container.duration or 0) / 1e6 > 1.0
        # a row a crashed server left "recording" (no file) ...
        async with services.db.transaction() as conn:
            await conn.execute(recordings.insert().values(
                meeting_id=scene.meeting_id, status="recording", file_name="hop-x.webm", started_at=utcnow(),
                started_by="test", stop_reason="", width=W, height=H, fps=FPS, node=node))
            # another node's running recording is not this node's to interrupt
            await conn.execute(recordings.insert().values(
                meeting_id=scene.meeting_id, status="recording", file_name="hop-y.webm", started_at=utcnow(),
                started_by="test", stop_reason="", width=W, height=H, fps=FPS, node="other-host:/data"))
    finally:
        await services.close()
    client = await aiohttp_client(create_app(config))  # ... is interrupted at the next start
    states = [(r.status, r.stop_reason) for r in await client.app[RECORDING].domain.list(scene.meeting_id)]
    assert states == [("completed", "shutdown"), ("interrupted", "server_restart"), ("recording", "")]
    await client.close()


async def test_recording_shows_shared_content_on_the_main_screen(api: Api) -> None:
    """A share laid out on the main screen is what the recording shows (16:9, full width)."""
    scene = await build_scene(api)
    await set_main(scene, "D1")
    d1 = await MediaPeer.join(scene, scene.d1_device, "D1")
    chair = await MediaPeer.join(scene, scene.chair, "chair")
    try:
        await d1.offer(cameras=(("camera", 160, 120, 10),), mic=True)
        await chair.offer(cameras=(("screen", 320, 180, 10),))
        rec = await (await start(scene, scene.chair)).json()
        await asyncio.sleep(3.0)
        resp = await api.client.post(f"/api/meetings/{scene.meeting_id}/share", json={"layout": "main"},
                                     headers=api.bearer(scene.chair))
        assert resp.status == 201, await resp.text()
        await asyncio.sleep(4.0)
        done = await (await stop(scene, scene.chair, rec["id"])).json()
    finally:
        await asyncio.gather(d1.close(), chair.close(), return_exceptions=True)
    assert done["status"] == "completed"
    path = api.client.app[RECORDING].dir / f"hop-{scene.meeting_id}-{rec['id']}.webm"
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(video=0)]
    # D1's 4:3 camera leaves columns 0..79 black; the 16:9 screen fills the whole width
    edge = [float(f[:H, 40].mean()) for f in frames]
    assert max(edge[FPS:FPS * 3]) < 25 and min(edge[-FPS:]) > 30, edge
