"""Minutes over real HTTP: a meeting with attendance, speakers and votes, conclusions with
markup, generation, versions, the PDF read back by independent tools (poppler pdftotext and
pypdf) with exact Vietnamese, page 1 kept as a PNG artefact, and the refusals."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
import uuid
from pathlib import Path

import pymupdf
import pypdf
import pytest
import sqlalchemy as sa

from meetings.clock import utcnow
from meetings.store.tables_documents import agenda_items
from tests.conftest import REPO, Api
from tests.server.test_floor_api_kit import Hall, build_hall

ARTIFACTS = REPO / "tests" / "artifacts"
AGENDA = [("Báo cáo tình hình kinh tế - xã hội quý IV", "Sở Kế hoạch và Đầu tư"),
          ("Dự thảo Nghị quyết về đầu tư công", "Sở Tài chính")]
CONCLUSIONS = ("Giao Sở Tài chính chủ trì, phối hợp các huyện rà soát nguồn vốn đầu tư công.\n"
               "<script>alert('xss')</script> & <b>không</b> được hiển thị như mã.")


def normalized(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def pdftotext(data: bytes, tmp: Path) -> str:
    path = tmp / "minutes.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                         check=True, timeout=60)
    return out.stdout.decode("utf-8")


async def run_meeting(h: Hall) -> int:
    """Attendance, two speakers, one secret vote published; returns the vote id."""
    await h.mark_present("D01", "D02")
    await h.call("PUT", h.m("/attendance/D03"), h.secretary, {"status": "absent", "reason": "Đường sạt lở"},
                 status=200)
    req = await h.call("POST", h.m("/floor/requests"), h.devices["D02"], {"topic": "Tiến độ giải phóng mặt bằng"},
                       status=201)
    await h.call("POST", h.m("/floor/grant"), h.chair, {"request_id": req["id"]}, status=200)
    await h.call("POST", h.m("/floor/grant"), h.chair, {"point_code": "D01"}, status=200)
    await h.call("POST", h.m("/floor/revoke"), h.chair, status=200)
    async with h.api.services.db.transaction() as conn:  # the documents feature's agenda
        for position, (title, presenter) in enumerate(AGENDA):
            await conn.execute(agenda_items.insert().values(
                meeting_id=h.meeting_id, parent_id=None, position=position, title=title, presenter=presenter,
                duration_min=None, created_at=utcnow()))
        item_id = (await conn.execute(sa.select(sa.func.min(agenda_items.c.id)))).scalar()
    vote = await h.call("POST", h.m("/votes"), h.chair, {"title": "Thông qua dự thảo Nghị quyết", "secret": True,
                                                         "agenda_item_id": item_id}, status=201)
    assert vote["agenda_item_id"] == item_id
    for code, choice in (("D01", "agree"), ("D02", "disagree")):
        await h.call("POST", f"/api/votes/{vote['id']}/ballots", h.devices[code],
                     {"choice": choice, "client_ballot_id": uuid.uuid4().hex}, status=201)
    await h.call("POST", f"/api/votes/{vote['id']}/close", h.chair, status=200)
    await h.call("POST", f"/api/votes/{vote['id']}/publish", h.chair, status=200)
    return int(vote["id"])


async def test_minutes_contain_the_record_with_exact_vietnamese(api: Api, tmp_path: Path) -> None:
    h = await build_hall(api)
    await run_meeting(h)
    made = await h.call("POST", h.m("/minutes"), h.secretary,
                        {"conclusions": CONCLUSIONS, "number": "125", "place": "Tuyên Quang"}, status=201)
    assert made["version"] == 1 and made["pages"] >= 1
    resp = await api.client.get(made["url"], headers=h.secretary)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    data = await resp.read()
    assert data.startswith(b"%PDF-")
    texts = [normalized("\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages))]
    if shutil.which("pdftotext"):
        texts.append(normalized(pdftotext(data, tmp_path)))
    for text in texts:
        for expected in (
            "ỦY BAN NHÂN DÂN", "TỈNH TUYÊN QUANG", "Số: 125/BB-UBND", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập - Tự do - Hạnh phúc", "BIÊN BẢN", "Hội nghị giao ban trực tuyến quý IV",
            "THÀNH PHẦN THAM DỰ", "Huyện Lâm Bình", "Huyện Na Hang", "Huyện Chiêm Hóa",
            "Trực tiếp tại hội trường", "Vắng mặt", "Đường sạt lở",
            "Ý kiến phát biểu", "Tiến độ giải phóng mặt bằng", "Chương trình họp",
            "1. Báo cáo tình hình kinh tế - xã hội quý IV (Sở Kế hoạch và Đầu tư)",
            "2. Dự thảo Nghị quyết về đầu tư công (Sở Tài chính)",
            "Thông qua dự thảo Nghị quyết (nội dung số 1 của chương trình)", "Bỏ phiếu kín", "Tán thành", "Không tán thành",
            "Không biểu quyết", "50,00%", "KẾT LUẬN", "Giao Sở Tài chính chủ trì",
            "<script>alert('xss')</script> & <b>không</b> được hiển thị như mã.",
            "THƯ KÝ", "CHỦ TRÌ", "Lê Thị Thư", "Nguyễn Văn Chủ", "Nơi nhận",
        ):
            assert normalized(expected) in text, expected
    # page 1 as a PNG for people to look at
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open("pdf", data)
    doc[0].get_pixmap(dpi=100).save(str(ARTIFACTS / "minutes-page1.png"))
    fonts = {f[3] for i in range(doc.page_count) for f in doc[i].get_fonts()}
    assert fonts and all("Noto Serif" in name and "+" in name for name in fonts), fonts  # subset, no base-14
    assert doc[0].rect.width == pytest.approx(595, abs=1) and doc[0].rect.height == pytest.approx(842, abs=1)
    # regenerated after an edit: a new version, the old one kept
    await h.call("PUT", h.m("/minutes/conclusions"), h.chair, {"text": "Kết luận đã chỉnh sửa."}, status=200)
    again = await h.call("POST", h.m("/minutes"), h.chair, {}, status=201)
    assert again["version"] == 2
    listed = await h.call("GET", h.m("/minutes"), h.secretary, status=200)
    assert [v["version"] for v in listed["versions"]] == [1, 2] and listed["conclusions"] == "Kết luận đã chỉnh sửa."
    assert listed["versions"][1]["generated_by"] == "Nguyễn Văn Chủ"
    v2 = await (await api.client.get(again["url"], headers=h.chair)).read()
    assert "Kết luận đã chỉnh sửa." in normalized(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(v2)).pages))
    v1 = await (await api.client.get(made["url"], headers=h.chair)).read()
    assert v1 == data


async def test_minutes_refusals(api: Api) -> None:
    h = await build_hall(api)
    for who in (h.delegate, h.devices["D01"], h.observer, h.outsider):
        await h.call("POST", h.m("/minutes"), who, {}, status=403)
        await h.call("GET", h.m("/minutes"), who, status=403)
        await h.call("PUT", h.m("/minutes/conclusions"), who, {"text": "x"}, status=403)
    await h.call("POST", h.m("/minutes"), None, {}, status=401)
    body = await h.call("GET", h.m("/minutes/7.pdf"), h.secretary, status=404)
    assert body["error"]["code"] == "minutes_not_found"
    await h.call("GET", h.m("/minutes/abc.pdf"), h.secretary, status=400)
    await h.call("PUT", h.m("/minutes/conclusions"), h.secretary, {"text": 5}, status=400)
    await h.call("PUT", h.m("/minutes/conclusions"), h.secretary, {"text": "x" * 60001}, status=400)
    await h.call("POST", h.m("/minutes"), h.secretary, {"number": "x" * 201}, status=400)
    await h.call("POST", "/api/meetings/999/minutes", h.admin, {}, status=404)
    # conclusions come back as plain text, exactly as written (escaping happens where shown)
    text = "<img src=x onerror=alert(1)> Kết luận"
    body = await h.call("PUT", h.m("/minutes/conclusions"), h.secretary, {"text": text}, status=200)
    assert body["text"] == text
