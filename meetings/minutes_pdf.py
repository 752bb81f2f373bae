"""Rendering minutes to PDF with PyMuPDF (Story + DocumentWriter), in the layout of
administrative documents (thể thức văn bản hành chính, Decree 30/2020/NĐ-CP):

A4; margins top/bottom 20 mm, left 30 mm, right 15 mm; Noto Serif (shipped in web/fonts,
OFL) body 13 pt; left header the issuing body (bold, a short rule under it) and
``Số: …/BB-UBND``; right header the national title and motto (bold, a rule under the motto)
and the place and date in italics; title BIÊN BẢN and subject; body sections; vote tables with
counts and percentages; conclusions; end time; THƯ KÝ / CHỦ TRÌ side by side; Nơi nhận;
page numbers from page 2, centred in the top margin. Every piece of user text is
NFC-normalised and HTML-escaped; the fonts are subset.

Document text is Vietnamese by nature (an administrative document), so it lives here and not
in the UI catalogs.
"""

from __future__ import annotations

import html
import io
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pymupdf

from .attendance import PointAttendance, Status
from .minutes import AgendaEntry, MinutesRecord
from .votes import VoteResult

FONTS = Path(__file__).resolve().parent.parent / "web" / "fonts"
REGULAR, BOLD, ITALIC = "NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf", "NotoSerif-Italic.ttf"
BOLD_ITALIC = "NotoSerif-BoldItalic.ttf"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MM = 72 / 25.4
PAGE = pymupdf.paper_rect("a4")
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT = 20 * MM, 20 * MM, 30 * MM, 15 * MM
BODY = PAGE + (MARGIN_LEFT, MARGIN_TOP, -MARGIN_RIGHT, -MARGIN_BOTTOM)
LEVELS = {"province": "Tỉnh", "district": "Huyện", "commune": "Xã"}
STATUS = {Status.ONLINE: "Trực tuyến", Status.IN_HALL: "Trực tiếp tại hội trường",
          Status.ABSENT: "Vắng mặt", Status.UNKNOWN: "Chưa xác định"}

CSS = f"""
@font-face {{ font-family: vnserif; src: url({REGULAR}); }}
@font-face {{ font-family: vnserif; src: url({BOLD}); font-weight: bold; }}
@font-face {{ font-family: vnserif; src: url({ITALIC}); font-style: italic; }}
@font-face {{ font-family: vnserif; src: url({BOLD_ITALIC}); font-weight: bold; font-style: italic; }}
body {{ font-family: vnserif; font-size: 13pt; line-height: 1.25; margin: 0; padding: 0; }}
p {{ margin: 0 0 5pt 0; text-align: justify; }}
.issuer {{ font-size: 12.5pt; font-weight: bold; margin: 0; line-height: 1.2; }}
.nation {{ font-size: 12pt; font-weight: bold; margin: 0; line-height: 1.2; }}
.motto {{ font-size: 13pt; font-weight: bold; margin: 0; line-height: 1.2; }}
.date {{ font-style: italic; margin: 0; }}
h1 {{ font-size: 14pt; font-weight: bold; text-align: center; margin: 14pt 0 0 0; }}
.subject {{ font-weight: bold; text-align: center; margin: 0 0 12pt 0; }}
h2 {{ font-size: 13pt; font-weight: bold; margin: 10pt 0 4pt 0; }}
h3 {{ font-size: 13pt; font-weight: bold; font-style: italic; margin: 6pt 0 3pt 0; }}
table.grid {{ border-collapse: collapse; width: 100%; margin: 2pt 0 6pt 0; }}
table.grid td, table.grid th {{ border: 0.6pt solid black; padding: 1pt 3pt; font-size: 11.5pt;
    vertical-align: top; }}
table.grid th {{ font-weight: bold; text-align: center; }}
.c {{ text-align: center; }}
.r {{ text-align: right; }}
.sign td {{ text-align: center; vertical-align: top; width: 50%; }}
.sign p {{ text-align: center; margin: 0; }}
.role {{ font-weight: bold; }}
.hint {{ font-style: italic; font-size: 12pt; }}
.name {{ font-weight: bold; margin-top: 60pt; }}
.recipients p {{ text-align: left; margin: 0; font-size: 11pt; }}
.recipients .label {{ font-weight: bold; font-style: italic; font-size: 12pt; }}
"""


def _e(text: str) -> str:
    """NFC and HTML-escaped: user text can never become markup."""
    return html.escape(unicodedata.normalize("NFC", text), quote=True)


def _local(value: datetime) -> datetime:
    return value.astimezone(ZONE)


def _date_line(place: str, when: datetime) -> str:
    t = _local(when)
    return f"{place or '…'}, ngày {t.day:02d} tháng {t.month:02d} năm {t.year}"


def _clock(value: datetime | None) -> str:
    return "…" if value is None else _local(value).strftime("%H:%M")


def _full_time(value: datetime) -> str:
    t = _local(value)
    return f"{t.hour:02d} giờ {t.minute:02d}, ngày {t.day:02d} tháng {t.month:02d} năm {t.year}"


def _paragraphs(text: str) -> str:
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return "".join(f"<p>{_e(line)}</p>" for line in lines) or "<p>…</p>"


def _title(m: MinutesRecord) -> str:
    return f"<h1>BIÊN BẢN</h1><p class='subject'>{_e(m.title)}</p>"


def _issuer_lines(issuer: str) -> str:
    """The issuing body on two lines when it starts with the usual "ỦY BAN NHÂN DÂN"."""
    text = unicodedata.normalize("NFC", issuer).strip()
    for head in ("ỦY BAN NHÂN DÂN ", "UỶ BAN NHÂN DÂN "):
        if text.startswith(head) and "\n" not in text:
            text = head.strip() + "\n" + text[len(head):]
    return text


def _header_blocks(m: MinutesRecord) -> tuple[str, str, str, str]:
    """(issuer, number, national title + motto, place and date) as HTML fragments."""
    issuer = "<br/>".join(_e(line) for line in _issuer_lines(m.issuer).split("\n"))
    number = f"Số: {_e(m.number)}/BB-UBND" if m.number else "Số:&#160;&#160;&#160;&#160;&#160;&#160;&#160;/BB-UBND"
    return (f"<p class='issuer c'>{issuer}</p>", f"<p class='c'>{number}</p>",
            ("<p class='nation c'>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</p>"
             "<p class='motto c'>Độc lập - Tự do - Hạnh phúc</p>"),
            f"<p class='date c'>{_e(_date_line(m.place, m.starts_at))}</p>")


def _attendance_table(points: list[PointAttendance]) -> str:
    rows = []
    for i, p in enumerate(points, 1):
        note = p.reason if p.status is Status.ABSENT else ""
        count = "" if p.headcount is None else str(p.headcount)
        rows.append(f"<tr><td class='c'>{i}</td><td>{_e(p.name)}</td><td>{_e(LEVELS.get(p.level, p.level))}</td>"
                    f"<td>{_e(STATUS[p.status])}</td><td class='c'>{_e(count)}</td><td>{_e(note)}</td></tr>")
    return ("<table class='grid'><tr><th>STT</th><th>Điểm cầu</th><th>Cấp</th><th>Hình thức</th>"
            "<th>Số người</th><th>Ghi chú</th></tr>" + "".join(rows) + "</table>")


def _vote_block(n: int, r: VoteResult, agenda: list[AgendaEntry]) -> str:
    v = r.vote
    kind = "Bỏ phiếu kín" if v.secret else "Biểu quyết công khai"
    who = "điểm cầu" if v.electorate == "points" else "đại biểu"
    item = next((i for i, a in enumerate(agenda, 1) if a.id is not None and a.id == v.agenda_item_id), None)
    about = f" (nội dung số {item} của chương trình)" if item else ""
    rows = "".join(
        f"<tr><td>{_e(c.label)}</td><td class='r'>{r.counts.get(c.key, 0)}</td>"
        f"<td class='r'>{r.percentages.get(c.key, 0.0):.2f}%</td></tr>".replace('.', ',') for c in v.choices)
    out = (f"<h3>{n}. {_e(v.title)}{about}</h3>"
           f"<p>Hình thức: {kind}. Số {who} có quyền biểu quyết có mặt: {v.eligible}; số phiếu: {v.ballots_cast}.</p>"
           "<table class='grid'><tr><th>Phương án</th><th>Số phiếu</th><th>Tỷ lệ</th></tr>" + rows + "</table>")
    if r.named:
        labels = {c.key: c.label for c in v.choices}
        names = "; ".join(f"{_e(name)}: {_e(labels.get(choice, choice))}" for name, choice in r.named)
        out += f"<p class='hint'>Biểu quyết của từng {who}: {names}.</p>"
    return out


def _duration(seconds: float | None) -> str:
    total = int(round(seconds or 0))
    h, rest = divmod(total, 3600)
    return f"{h} giờ {rest // 60:02d} phút {rest % 60:02d} giây" if h else f"{rest // 60} phút {rest % 60:02d} giây"


def recordings_line(m: MinutesRecord) -> str:
    """The recordings of the meeting (ghi hình), one sentence: start, stop and duration of each."""
    items = [f"từ {_clock(r.started_at)} đến {_clock(r.stopped_at)} ({_duration(r.duration_s)})"
             for r in m.recordings]
    return f"Cuộc họp được ghi hình ({len(items)} bản ghi): " + "; ".join(items) + "."


def minutes_html(m: MinutesRecord, generated: datetime, *, closing_on_new_page: bool = False) -> str:
    connected = sum(1 for p in m.attendance if p.status in (Status.ONLINE, Status.IN_HALL))
    parts = [_title(m)]
    parts.append(f"<p>Thời gian bắt đầu: {_e(_full_time(m.starts_at))}.</p>")
    where = f"Địa điểm: điểm cầu chính {_e(m.host_name)}" if m.host_name else "Địa điểm: …"
    parts.append(f"<p>{where}, kết nối trực tuyến với {len(m.attendance)} điểm cầu được mời "
                 f"({connected} điểm cầu có mặt).</p>")
    parts.append(f"<p>Chủ trì: {_e(m.chair_name or '…')}. Thư ký: {_e(m.secretary_name or '…')}.</p>")
    parts.append("<h2>I. THÀNH PHẦN THAM DỰ</h2>")
    parts.append(_attendance_table(m.attendance))
    parts.append("<h2>II. NỘI DUNG CUỘC HỌP</h2>")
    if m.description.strip():
        parts.append(_paragraphs(m.description))
    if m.agenda:
        parts.append("<h3>Chương trình họp</h3>")
        parts.extend(f"<p>{i}. {_e(a.title)}{' (' + _e(a.presenter) + ')' if a.presenter else ''}</p>"
                     for i, a in enumerate(m.agenda, 1))
    parts.append("<h3>Ý kiến phát biểu</h3>")
    if m.turns:
        for i, t in enumerate(m.turns, 1):
            who = t.point_name if t.label == t.point_name else f"{t.label} ({t.point_name})"
            topic = f": {_e(t.topic)}" if t.topic else ""
            parts.append(f"<p>{i}. {_e(who)}, từ {_clock(t.started_at)} đến {_clock(t.ended_at)}{topic}.</p>")
    else:
        parts.append("<p>Không có ý kiến phát biểu được ghi nhận.</p>")
    if m.recordings:
        parts.append(f"<p>{_e(recordings_line(m))}</p>")
    parts.append("<h2>III. KẾT QUẢ BIỂU QUYẾT</h2>")
    if m.votes:
        parts.extend(_vote_block(i, r, m.agenda) for i, r in enumerate(m.votes, 1))
    else:
        parts.append("<p>Không có nội dung biểu quyết.</p>")
    parts.append("<h2>IV. KẾT LUẬN</h2>")
    parts.append(_paragraphs(m.conclusions))
    end = m.ended_at or generated
    brk = " style='page-break-before: always'" if closing_on_new_page else ""
    parts.append(f"<p id='closing'{brk}>Cuộc họp kết thúc vào lúc {_e(_full_time(end))}.</p>")
    parts.append(f"""
<table class="sign" style="width:100%; margin-top: 14pt"><tr>
<td><p class="role">THƯ KÝ</p><p class="hint">(Ký, ghi rõ họ tên)</p><p class="name">{_e(m.secretary_name)}</p></td>
<td><p class="role">CHỦ TRÌ</p><p class="hint">(Ký, ghi rõ họ tên)</p><p class="name">{_e(m.chair_name)}</p></td>
</tr></table>
<div class="recipients" style="margin-top: 18pt"><p class="label">Nơi nhận:</p>
<p>- Các điểm cầu tham dự;</p><p>- Chủ trì cuộc họp;</p><p id='end'>- Lưu: VT.</p></div>""")
    return "\n".join(parts)


def _story(fragment: str) -> pymupdf.Story:
    return pymupdf.Story(fragment, user_css=CSS, archive=pymupdf.Archive(str(FONTS)))


def _block(device: Any, fragment: str, rect: pymupdf.Rect) -> pymupdf.Rect:
    """Draw a small HTML fragment into ``rect``; the part of it that was used."""
    story = _story(fragment)
    _, filled = story.place(rect)
    story.draw(device)
    return pymupdf.Rect(filled)


def _header(device: Any, m: MinutesRecord) -> tuple[float, list[tuple[float, float, float]]]:
    """Draw the two-column header of page 1; where the body starts, and the rules to draw
    (centre x, y, width) — under the issuing body (a third of its width) and under the motto."""
    issuer, number, nation, date = _header_blocks(m)
    split = BODY.x0 + BODY.width * 0.42
    left = pymupdf.Rect(BODY.x0, BODY.y0, split - 4, BODY.y0 + 200)
    right = pymupdf.Rect(split, BODY.y0, BODY.x1, BODY.y0 + 200)
    bold = pymupdf.Font(fontfile=str(FONTS / BOLD))
    rules = []
    used = _block(device, issuer, left)
    longest = max(bold.text_length(line, 12.5) for line in _issuer_lines(m.issuer).split("\n"))
    rules.append(((left.x0 + left.x1) / 2, used.y1 + 4, longest / 3))
    used_left = _block(device, number, pymupdf.Rect(left.x0, used.y1 + 12, left.x1, left.y1))
    used = _block(device, nation, right)
    rules.append(((right.x0 + right.x1) / 2, used.y1 + 4, bold.text_length("Độc lập - Tự do - Hạnh phúc", 13)))
    used_right = _block(device, date, pymupdf.Rect(right.x0, used.y1 + 12, right.x1, right.y1))
    return max(used_left.y1, used_right.y1) + 6, rules


def _write(m: MinutesRecord, text: str) -> tuple[bytes, list[tuple[float, float, float]], dict[str, int]]:
    """Lay out once: the PDF, the header rules to draw, and the page of each marked element."""
    story = _story(text)
    pages: dict[str, int] = {}

    def note(pos: object) -> None:
        ident = getattr(pos, "id", "")
        if ident in ("closing", "end"):
            pages.setdefault(ident, int(getattr(pos, "page_num", 0)))

    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    more, page_no = 1, 0
    rules: list[tuple[float, float, float]] = []
    while more:
        page_no += 1
        device = writer.begin_page(PAGE)
        where = BODY
        if page_no == 1:
            top, rules = _header(device, m)
            where = pymupdf.Rect(BODY.x0, top, BODY.x1, BODY.y1)
        more, _ = story.place(where)
        story.element_positions(note, {"page_num": page_no})
        story.draw(device)
        writer.end_page()
    writer.close()
    return buffer.getvalue(), rules, pages


def render_minutes(m: MinutesRecord, *, generated: datetime | None = None) -> tuple[bytes, int]:
    """The minutes as PDF bytes, and their page count. The closing (end time, signatures,
    recipients) is kept on one page: when it would split, it starts a new page."""
    generated = generated or datetime.now(ZONE)
    data, rules, pages = _write(m, minutes_html(m, generated))
    if pages.get("closing") != pages.get("end"):
        data, rules, pages = _write(m, minutes_html(m, generated, closing_on_new_page=True))
    doc = pymupdf.open("pdf", data)
    for x, y, width in rules:
        doc[0].draw_line((x - width / 2, y), (x + width / 2, y), color=(0, 0, 0), width=0.6)
    regular = pymupdf.Font(fontfile=str(FONTS / REGULAR))
    for index in range(1, doc.page_count):  # no number on the first page (Decree 30)
        page = doc[index]
        page.insert_font(fontname="vnserif", fontbuffer=regular.buffer)
        label = str(index + 1)
        width = regular.text_length(label, 13)
        page.insert_text(((PAGE.width - width) / 2, MARGIN_TOP * 0.6), label, fontname="vnserif", fontsize=13)
    doc.subset_fonts()
    count = doc.page_count
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data, count
