"""Rendering page views and thumbnails: exact widths, real JPEGs, a cache that is used, and
hostile pages that cost one placeholder — never the pool."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from meetings.documents import (
    DocumentLimits,
    NotPdf,
    PageImage,
    PageNotFound,
    PageRenderer,
    RenderProgress,
)
from meetings.documents.render import fit_zoom
from meetings.errors import Invalid, NotFound
from tests.data.make_pdfs import SamplePdfs

module_loop = pytest.mark.asyncio(loop_scope="module")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def size_of(image: PageImage) -> tuple[int, int]:
    with Image.open(image.path) as decoded:
        decoded.load()  # really decodes the JPEG
        assert decoded.format == "JPEG"
        return decoded.size


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def renderer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PageRenderer]:
    async with PageRenderer(tmp_path_factory.mktemp("render"), workers=2) as engine:
        yield engine


@module_loop
async def test_views_and_thumbnails_have_exact_widths(renderer: PageRenderer,
                                                      sample_pdfs: SamplePdfs) -> None:
    digest = sha(sample_pdfs.agenda)
    view = await renderer.render(digest, sample_pdfs.agenda, 1, "view")
    thumb = await renderer.render(digest, sample_pdfs.agenda, 1, "thumb")
    assert size_of(view) == (1240, 1754)  # A4 at 1240 px
    assert size_of(thumb) == (200, 283)
    assert not view.placeholder and view.media_type == "image/jpeg"
    assert view.path.parent.name == "view-1240-q80"


@module_loop
async def test_a_cached_page_is_never_rendered_again(renderer: PageRenderer,
                                                     sample_pdfs: SamplePdfs) -> None:
    digest = sha(sample_pdfs.agenda)
    first = await renderer.render(digest, sample_pdfs.agenda, 2, "view")
    jobs, mtime = renderer.stats().page_jobs, first.path.stat().st_mtime_ns
    again = await asyncio.gather(*(renderer.render(digest, sample_pdfs.agenda, 2, "view")
                                   for _ in range(5)))
    assert {image.path for image in again} == {first.path}
    assert renderer.stats().page_jobs == jobs
    assert first.path.stat().st_mtime_ns == mtime


@module_loop
async def test_concurrent_requests_for_one_page_share_one_render(
        renderer: PageRenderer, sample_pdfs: SamplePdfs) -> None:
    digest = sha(sample_pdfs.agenda)
    jobs = renderer.stats().page_jobs
    images = await asyncio.gather(*(renderer.render(digest, sample_pdfs.agenda, 3, "view")
                                    for _ in range(4)))
    assert len({image.path for image in images}) == 1
    assert renderer.stats().page_jobs == jobs + 1


@module_loop
async def test_render_all_yields_every_page_first_page_first(
        renderer: PageRenderer, sample_pdfs: SamplePdfs, tmp_path: Path) -> None:
    copy = tmp_path / "agenda-copy.pdf"  # a different hash: nothing cached yet
    copy.write_bytes(sample_pdfs.agenda.read_bytes() + b"\n%copy\n")
    digest = sha(copy)
    jobs = renderer.stats().page_jobs
    progress: list[RenderProgress] = [p async for p in renderer.render_all(digest, copy)]
    assert [p.done for p in progress] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.page for p in progress) == [1, 2, 3, 4, 5, 6]
    assert progress[0].page in (1, 2)  # page 1 is dispatched first; two workers race
    assert renderer.stats().page_jobs == jobs + 6  # one job per page makes view and thumb
    for step in progress:
        assert sorted(image.kind for image in step.images) == ["thumb", "view"]
        assert not step.failed
    again = [p async for p in renderer.render_all(digest, copy)]
    assert renderer.stats().page_jobs == jobs + 6 and len(again) == 6


@module_loop
async def test_the_14400_pt_page_renders_at_the_target_width(renderer: PageRenderer,
                                                             sample_pdfs: SamplePdfs) -> None:
    image = await renderer.render(sha(sample_pdfs.huge_page), sample_pdfs.huge_page, 1)
    assert size_of(image) == (1240, 1240)  # 1.5 MP, not a 1.35 GB raster at 72 dpi


@module_loop
async def test_a_scanned_page_renders(renderer: PageRenderer, sample_pdfs: SamplePdfs) -> None:
    image = await renderer.render(sha(sample_pdfs.scanned), sample_pdfs.scanned, 1, "thumb")
    assert size_of(image)[0] == 200


@module_loop
async def test_bad_requests_raise(renderer: PageRenderer, sample_pdfs: SamplePdfs) -> None:
    digest = sha(sample_pdfs.agenda)
    with pytest.raises(PageNotFound):
        await renderer.render(digest, sample_pdfs.agenda, 7)
    with pytest.raises(PageNotFound):
        await renderer.render(digest, sample_pdfs.agenda, 0)
    with pytest.raises(Invalid):
        await renderer.render(digest, sample_pdfs.agenda, 1, "poster")  # type: ignore[arg-type]
    with pytest.raises(NotPdf):
        await renderer.render(sha(sample_pdfs.png_renamed), sample_pdfs.png_renamed, 1)
    missing = hashlib.sha256(b"deleted meanwhile").hexdigest()
    with pytest.raises(NotFound):
        await renderer.render(missing, sample_pdfs.directory / "deleted.pdf", 1)
    assert renderer.cache.lookup(missing, 1, "view") is None  # nothing recorded as failed


@module_loop
async def test_page_text_round_trips_vietnamese_exactly(renderer: PageRenderer,
                                                       sample_pdfs: SamplePdfs) -> None:
    texts = await renderer.page_texts(sample_pdfs.agenda)
    assert len(texts) == 6
    for written, extracted in zip(sample_pdfs.agenda_texts, texts):
        assert " ".join(written.split()) in " ".join(extracted.split())
    assert "ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH" in texts[0]
    assert (await renderer.page_texts(sample_pdfs.scanned)) == ("",)


def test_zoom_follows_the_width_and_respects_the_pixel_cap() -> None:
    assert fit_zoom(595.28, 841.89, 1240, 16_000_000) == pytest.approx(1240 / 595.28)
    assert fit_zoom(14400, 14400, 1240, 16_000_000) == pytest.approx(1240 / 14400)
    tall = fit_zoom(200, 14400, 1240, 16_000_000)  # a strip: capped, narrower than asked
    assert (200 * tall) * (14400 * tall) <= 16_000_000 * 1.0001 and 200 * tall < 1240


@pytest.mark.asyncio
async def test_webp_when_configured(tmp_path: Path, sample_pdfs: SamplePdfs) -> None:
    limits = DocumentLimits(image_format="webp", view_width_px=600, thumb_width_px=100)
    async with PageRenderer(tmp_path, limits, workers=1) as engine:
        image = await engine.render(sha(sample_pdfs.agenda), sample_pdfs.agenda, 1)
    with Image.open(image.path) as decoded:
        assert (decoded.format, decoded.width) == ("WEBP", 600)
    assert image.media_type == "image/webp"


@pytest.mark.asyncio
async def test_hanging_and_crashing_pages_cost_a_placeholder_not_the_pool(
        tmp_path: Path, sample_pdfs: SamplePdfs) -> None:
    limits = DocumentLimits(render_timeout_s=1.0, worker_memory_bytes=512 * 1024 * 1024)
    agenda, bomb = sample_pdfs.agenda, sample_pdfs.image_bomb
    async with PageRenderer(tmp_path, limits, workers=1) as engine:
        # the 14400 pt page fits in 512 MB and 1 s at 1240 px
        assert size_of(await engine.render(sha(sample_pdfs.huge_page), sample_pdfs.huge_page,
                                           1)) == (1240, 1240)
        (pid,) = engine.worker_pids()
        # an image that expands to 30000 x 30000 px: seconds of CPU -> timeout
        hung = await engine.render(sha(bomb), bomb, 1, "view")
        assert hung.error == "render_timeout" and size_of(hung)[0] == 1240
        assert size_of(await engine.render(sha(agenda), agenda, 1)) == (1240, 1754)
        assert engine.worker_pids() != (pid,)  # the hung worker was killed and replaced
        # asking again answers the recorded failure without burning another timeout
        jobs = engine.stats().page_jobs
        assert (await engine.render(sha(bomb), bomb, 1, "view")).error == "render_timeout"
        assert engine.stats().page_jobs == jobs
        # a worker that dies mid-page (OOM killer, crash)
        (pid,) = engine.worker_pids()
        started = engine.stats().pool.jobs
        crashing = asyncio.ensure_future(engine.render(sha(bomb), bomb, 1, "thumb"))
        while engine.stats().pool.jobs == started:
            await asyncio.sleep(0.01)
        os.kill(pid, signal.SIGKILL)  # the worker this test's renderer started
        assert (await crashing).error == "worker_crashed"
        assert size_of(await engine.render(sha(agenda), agenda, 2, "thumb")) == (200, 283)
        stats = engine.stats()
        assert (stats.pool.timeouts, stats.pool.crashes, stats.placeholders) == (1, 1, 2)


@pytest.mark.asyncio
async def test_a_raster_over_the_memory_limit_fails_cleanly(tmp_path: Path,
                                                            sample_pdfs: SamplePdfs) -> None:
    limits = DocumentLimits(view_width_px=12_000, max_pixels=12_000 ** 2,
                            worker_memory_bytes=512 * 1024 * 1024)
    agenda = sample_pdfs.agenda
    async with PageRenderer(tmp_path, limits, workers=1) as engine:
        (pid,) = engine.worker_pids()
        failed = await engine.render(sha(agenda), agenda, 1, "view")  # 12000 x 16972 x 3 B
        assert failed.error == "out_of_memory" and failed.placeholder
        assert size_of(await engine.render(sha(agenda), agenda, 1, "thumb")) == (200, 283)
        assert engine.worker_pids() == (pid,)  # a clean MuPDF error: no restart needed


@pytest.mark.asyncio
async def test_close_stops_workers_and_background_pages(tmp_path: Path,
                                                        sample_pdfs: SamplePdfs) -> None:
    engine = PageRenderer(tmp_path, workers=1)
    await engine.start()
    pids = engine.worker_pids()
    stream = engine.render_all(sha(sample_pdfs.agenda), sample_pdfs.agenda)
    await stream.__anext__()
    await stream.aclose()
    await engine.close()
    await engine.close()  # twice is fine
    assert not [task for task in asyncio.all_tasks()
                if task is not asyncio.current_task() and not task.done()]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
