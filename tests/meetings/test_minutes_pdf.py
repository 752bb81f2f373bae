"""The minutes renderer on its own: a long meeting over several pages, read back with poppler's
pdftotext: page numbers from page 2 only, the closing kept on one page, NFD input written as
NFC, user markup shown as text, A4 and the margins of Decree 30."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymupdf
import pytest

from meetings.attendance import PointAttendance, Status
from meetings.floor import Turn
from meetings.minutes import AgendaEntry, MinutesRecord, issuer_for, place_for
from meetings.minutes_pdf import BODY, render_minutes
from meetings.votes import Choice, Vote, VoteResult

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
START = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def record(points: int, conclusions: str) -> MinutesRecord:
    statuses = [Status.ONLINE, Status.IN_HALL, Status.ABSENT]
    attendance = [PointAttendance(f"X{i:03d}", f"Xã Hồng Quang {i}", "commune", statuses[i % 3],
                                  20 if i % 3 == 1 else None, "Bão lũ" if i % 3 == 2 else "", START, None, 60)
                  for i in range(points)]
    choices = (Choice("agree", "Tán thành"), Choice("disagree", "Không tán thành"), Choice("abstain", "Không biểu quyết"))
    vote = Vote(1, 1, "Thông qua Nghị quyết", None, choices, False, "points", "published", START, START, 3, 4)
    result = VoteResult(vote, {"agree": 2, "disagree": 1, "abstain": 0},
                        {"agree": 50.0, "disagree": 25.0, "abstain": 0.0}, [("Xã Hồng Quang 1", "agree")])
    turns = [Turn("X001", "Xã Hồng Quang 1", "Xã Hồng Quang 1", "Giao thông nông thôn", START,
                  START + timedelta(minutes=4))]
    return MinutesRecord(1, "Họp thường kỳ tháng 11", "", START, START + timedelta(hours=3), "Tỉnh Tuyên Quang",
                         "Nguyễn Văn An", "Lò Thị Bình", issuer_for("Tỉnh Tuyên Quang"), "", place_for("Tỉnh Tuyên Quang"),
                         attendance, [AgendaEntry("Báo cáo kinh tế - xã hội", "Sở Tài chính")], turns, [result],
                         conclusions, 1)


def pages_text(data: bytes, tmp: Path) -> list[str]:
    path = tmp / "m.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60)
    return out.stdout.decode("utf-8").split("\f")


def test_long_minutes_layout(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "Giao Ủy ban nhân dân các xã thực hiện. <b>Đậm?</b>")
    data, count = render_minutes(record(120, nfd))
    assert count >= 4
    pages = pages_text(data, tmp_path)
    first = pages[0].splitlines()
    assert not any(line.strip().isdigit() for line in first[:3])  # no number on page 1
    for number in range(2, count + 1):
        head = next(line.strip() for line in pages[number - 1].splitlines() if line.strip())
        assert head == str(number)
    text = " ".join(" ".join(p.split()) for p in pages)
    assert "Giao Ủy ban nhân dân các xã thực hiện. <b>Đậm?</b>" in text  # NFC, markup as text
    assert "ỦY BAN NHÂN DÂN" in text and "TỈNH TUYÊN QUANG" in text and "Tuyên Quang, ngày 20 tháng 11 năm 2026" in text
    assert "Số: /BB-UBND" in text and "Xã Hồng Quang 119" in text and "Bão lũ" in text
    assert "50,00%" in text and "25,00%" in text and "Xã Hồng Quang 1: Tán thành" in text
    closing = [i for i, p in enumerate(pages) if "Cuộc họp kết thúc" in p]
    ending = [i for i, p in enumerate(pages) if "Lưu: VT." in p]
    assert closing == ending and "THƯ KÝ" in pages[closing[0]] and "CHỦ TRÌ" in pages[closing[0]]
    doc = pymupdf.open("pdf", data)
    for page in (doc[i] for i in range(doc.page_count)):
        assert page.rect == pymupdf.paper_rect("a4")
        for block in page.get_text("blocks"):
            x0, _y0, x1, _y1 = block[:4]
            assert x0 >= BODY.x0 - 1 and x1 <= BODY.x1 + 1, block  # 30 mm left, 15 mm right
    assert 84 <= BODY.x0 <= 86 and 552 <= BODY.x1 <= 554


def test_issuer_and_place_from_the_host_point() -> None:
    assert issuer_for("Tỉnh Tuyên Quang") == "ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG"
    assert issuer_for("UBND huyện Yên Sơn") == "UBND HUYỆN YÊN SƠN"
    assert issuer_for("") == "ỦY BAN NHÂN DÂN"
    assert place_for("Huyện Yên Sơn") == "Yên Sơn" and place_for("Thành phố Tuyên Quang") == "Tuyên Quang"
