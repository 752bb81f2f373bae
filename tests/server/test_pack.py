"""The meeting pack: one zip of the documents a caller may see, resumable with HTTP Range."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.conftest import Api
from tests.data.make_pdfs import SamplePdfs
from tests.server.test_documents_api_kit import DocWorld


@pytest.fixture
async def world(api: Api) -> DocWorld:
    return await DocWorld(api).setup()


async def test_pack_resumes_and_respects_access(world: DocWorld, sample_pdfs: SamplePdfs) -> None:
    url = f"/api/meetings/{world.meeting_id}/pack"
    assert (await world.get(url)).status == 404  # nothing yet
    await world.upload(sample_pdfs.agenda, title="Báo cáo tổng hợp")
    await world.upload(sample_pdfs.scanned, title="Tờ trình", visibility="restricted", allowed_roles="chair")
    resp = await world.get(url)
    assert resp.status == 200 and resp.content_type == "application/zip"
    whole = await resp.read()
    names = zipfile.ZipFile(io.BytesIO(whole)).namelist()
    assert names == ["01 - Báo cáo tổng hợp.pdf"]
    assert zipfile.ZipFile(io.BytesIO(whole)).read(names[0]) == sample_pdfs.agenda.read_bytes()
    # a broken download resumes where it stopped, against the same bytes
    half = len(whole) // 2
    rest = await world.get(url, headers={"Range": f"bytes={half}-"})
    assert rest.status == 206 and whole[:half] + await rest.read() == whole
    staff = await (await world.get(url, "chutri")).read()
    assert len(zipfile.ZipFile(io.BytesIO(staff)).namelist()) == 2
    assert (await world.get(url, "ngoai")).status == 403
