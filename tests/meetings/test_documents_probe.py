"""Checking uploads: every hostile file gets its own clear error code; good ones their facts."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from meetings.documents import (
    DocumentInvalid,
    DocumentLimits,
    PageRenderer,
    PdfInfo,
    probe,
    probe_pdf,
)
from meetings.documents.errors import EncryptedPdf, NotPdf, PageTooLarge
from meetings.errors import DomainError, Invalid, NotFound
from meetings.store.files import FileStore, FileTooLarge
from tests.data.make_pdfs import SamplePdfs

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prober(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PageRenderer]:
    async with PageRenderer(tmp_path_factory.mktemp("render"), workers=1) as renderer:
        yield renderer


async def refused(renderer: PageRenderer, path: Path) -> Invalid:
    with pytest.raises(Invalid) as caught:  # server/ maps it to 400
        await renderer.probe(path)
    assert isinstance(caught.value, DocumentInvalid) or caught.value.code == "file_too_large"
    assert caught.value.message and caught.value.message.isascii()
    return caught.value


@module_loop
@pytest.mark.parametrize(("sample", "code"), [
    ("png_renamed", "not_pdf"),
    ("jpeg_renamed", "not_pdf"),
    ("html_renamed", "not_pdf"),
    ("empty", "empty_file"),
    ("encrypted", "encrypted_pdf"),
    ("ten_thousand_pages", "too_many_pages"),
    ("oversized_page", "page_too_large"),
])
async def test_bad_inputs_get_their_error_code(prober: PageRenderer, sample_pdfs: SamplePdfs,
                                               sample: str, code: str) -> None:
    error = await refused(prober, getattr(sample_pdfs, sample))
    assert error.code == code


@module_loop
@pytest.mark.parametrize("sample", ["png_renamed", "html_renamed"])
async def test_content_with_a_pdf_header_is_still_refused(prober: PageRenderer, tmp_path: Path,
                                                         sample_pdfs: SamplePdfs,
                                                         sample: str) -> None:
    store = FileStore(tmp_path / "files")  # stored uploads have no extension: MuPDF sniffs
    stored = store.put_bytes(b"<!-- %PDF-1.7 -->" + getattr(sample_pdfs, sample).read_bytes())
    assert (await refused(prober, stored.path)).code in ("not_pdf", "corrupt_pdf")


def test_is_pdf_is_checked_after_opening(tmp_path: Path, sample_pdfs: SamplePdfs,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Without an extension MuPDF opens a PNG or an HTML page as a one-page document; the
    # header check refuses them first, and doc.is_pdf would if it were ever fooled.
    store = FileStore(tmp_path / "files")
    monkeypatch.setattr(probe, "check_header", lambda path, limits: 1)
    for sample in (sample_pdfs.png_renamed, sample_pdfs.html_renamed):
        stored = store.put_bytes(sample.read_bytes())
        with pytest.raises(NotPdf):
            probe.inspect_pdf(str(stored.path), DocumentLimits())


@module_loop
async def test_a_missing_file_is_not_found(prober: PageRenderer, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as caught:
        await prober.probe(tmp_path / "gone")
    assert caught.value.code == "file_not_found"


@module_loop
async def test_garbage_after_a_pdf_header_is_corrupt(prober: PageRenderer,
                                                     tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    assert (await refused(prober, garbage)).code == "corrupt_pdf"


@module_loop
async def test_page_limit_and_page_size_errors_name_the_numbers(
        prober: PageRenderer, sample_pdfs: SamplePdfs) -> None:
    pages = await refused(prober, sample_pdfs.ten_thousand_pages)
    assert pages.details == {"page_count": 10_000, "max_pages": 2000}
    size = await refused(prober, sample_pdfs.oversized_page)
    assert size.details["page"] == 1
    assert "page 1 " in size.message


@module_loop
async def test_a_good_agenda_is_described(prober: PageRenderer, sample_pdfs: SamplePdfs) -> None:
    info = await prober.probe(sample_pdfs.agenda)
    assert info.page_count == len(info.pages) == 6
    assert info.title == "Tài liệu hội nghị trực tuyến — chính quyền điện tử"
    assert info.author == "Văn phòng UBND tỉnh"
    assert info.page_size(1).width_pt == pytest.approx(595.28)
    assert info.page_size(6).aspect == pytest.approx(841.89 / 595.28)
    assert not info.repaired and not info.encrypted and info.warnings == ()
    assert info.size_bytes == sample_pdfs.agenda.stat().st_size


@module_loop
async def test_a_truncated_file_is_accepted_as_repaired_with_warnings(
        prober: PageRenderer, sample_pdfs: SamplePdfs) -> None:
    info = await prober.probe(sample_pdfs.truncated)
    assert info.repaired
    assert info.warnings and any("repair" in line for line in info.warnings)


@module_loop
async def test_owner_password_only_opens_without_a_password(prober: PageRenderer,
                                                            sample_pdfs: SamplePdfs) -> None:
    info = await prober.probe(sample_pdfs.owner_only)
    assert info.page_count == 6


@module_loop
async def test_the_14400_pt_page_is_within_the_default_limit(prober: PageRenderer,
                                                             sample_pdfs: SamplePdfs) -> None:
    info = await prober.probe(sample_pdfs.huge_page)
    assert info.page_size(1).width_pt == 14400


@module_loop
async def test_limits_are_the_callers(tmp_path: Path, sample_pdfs: SamplePdfs) -> None:
    small = DocumentLimits(max_pages=5, max_page_pt=5000, max_bytes=100_000)
    async with PageRenderer(tmp_path, small, workers=1) as renderer:
        assert (await refused(renderer, sample_pdfs.agenda)).code == "file_too_large"
        assert (await refused(renderer, sample_pdfs.huge_page)).code == "page_too_large"
        six_blank = tmp_path / "six.pdf"
        from tests.data.make_pdfs import blank_pages_pdf
        blank_pages_pdf(six_blank, 6)
        assert (await refused(renderer, six_blank)).code == "too_many_pages"


def test_probe_pdf_runs_in_a_fresh_worker(sample_pdfs: SamplePdfs) -> None:
    info = probe_pdf(sample_pdfs.scanned)
    assert isinstance(info, PdfInfo) and info.page_count == 1
    with pytest.raises(EncryptedPdf):
        probe_pdf(sample_pdfs.encrypted)


@pytest.mark.parametrize("error", [
    PageTooLarge("page 3 is too large", details={"page": 3}),
    FileTooLarge(1000),
    NotFound("the document file is missing", code="file_not_found"),
])
def test_errors_survive_the_trip_from_a_worker(error: DomainError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.message, copy.details) == (
        type(error), error.code, error.message, error.details)


@pytest.mark.parametrize("changes", [
    {"max_pages": 0}, {"view_width_px": 8}, {"thumb_width_px": 2000},
    {"max_pixels": 1000}, {"image_format": "png"}, {"image_quality": 101},
    {"render_timeout_s": 0}, {"worker_memory_bytes": 1024}, {"max_bytes": 1.5},
    {"worker_store_soft_bytes": 1 << 40},
])
def test_limits_validate_themselves(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="documents\\."):
        DocumentLimits(**changes)  # type: ignore[arg-type]
