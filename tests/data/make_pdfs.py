"""Generate the PDFs (good and hostile) the document-engine tests and benchmark use.

Nothing binary is committed: ``tests/fixtures/pdfs.py`` calls :func:`make_all` once per test
session into a temporary directory, and ``bench/documents.py`` calls :func:`agenda_pdf`.
Run by hand to look at them: ``python tests/data/make_pdfs.py OUTDIR``.

The Vietnamese text is taken from the seed articles of ``../shared/seeds`` (provincial
e-government news) and written with the Noto Sans shipped in ``web/fonts`` (base-14 fonts
cannot draw Vietnamese).
"""

from __future__ import annotations

import argparse
import io
import unicodedata
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]

PARAGRAPHS: tuple[str, ...] = (
    ("Cán bộ công chức xã Đông Lai (Tân Lạc) ứng dụng công nghệ thông tin vào hoạt động chuyên "
     "môn. Đến nay, tỉnh đang hoàn thành việc nâng cấp khung kiến trúc chính quyền điện tử tỉnh "
     "lên phiên bản 2.0. Kết nối, liên thông một số hệ thống thông tin, cơ sở dữ liệu của tỉnh "
     "với các cơ sở dữ liệu quốc gia, hệ thống thông tin quốc gia."),
    ("Trong quý I/2020, toàn hệ thống có 193.855 văn bản đến, 45.873 văn bản đi được cập nhật, "
     "xử lý và trao đổi trên môi trường mạng giữa các cơ quan nhà nước. 100% sở, ban, ngành, "
     "UBND các huyện, thành phố đã sử dụng chữ ký số chuyên dùng của tổ chức để trao đổi văn bản "
     "điện tử trên môi trường mạng."),
    ("Xây dựng chính quyền số là 1 trong 3 trụ cột trong quá trình chuyển đổi số (CÐS), gồm: "
     "chính quyền số, kinh tế số và xã hội số. Ðến nay, TP Cần Thơ đã triển khai và đạt một số "
     "kết quả nổi bật trong phát triển hạ tầng kỹ thuật số và các hệ thống nền tảng, dữ liệu."),
    ("Đặc biệt, hệ thống hội nghị truyền hình trực tuyến đã hoàn thành việc triển khai đến cấp "
     "xã với 231 điểm cầu; các phần mềm nền tảng, phần mềm ứng dụng đồng bộ theo kiến trúc của "
     "Bộ Thông tin và Truyền thông cũng được đầu tư hoàn thiện và đưa vào vận hành."),
    ("Toàn tỉnh có 87 điểm cầu hội nghị truyền hình trực tuyến, trong đó cấp tỉnh có 21 điểm "
     "cầu, cấp huyện có 10 điểm cầu, cấp xã có 56 điểm cầu. Hiện nay, tỉnh đang thực hiện kết "
     "nối với các hệ thống thông tin, cơ sở dữ liệu của các bộ, ngành Trung ương."),
    ("Tuy nhiên, việc ứng dụng CNTT trong hoạt động vẫn còn một số khó khăn như: nguồn nhân lực "
     "đảm nhận việc phối hợp triển khai và tổ chức quản lý vận hành các hệ thống thông tin còn "
     "thiếu, đặc biệt là ở cấp huyện, xã; đường truyền tới một số điểm cầu cấp xã chưa ổn định."),
    ("Theo Phó Chủ tịch UBND tỉnh Bạc Liêu Lâm Thị Sang, Bạc Liêu đang thực hiện mạnh mẽ chủ "
     "trương ứng dụng công nghệ thông tin nhằm cải cách hành chính, hiện đại hóa cơ quan chính "
     "quyền, xây dựng một chính quyền hiệu lực, hiệu quả hơn."),
)
AGENDA_ITEMS: tuple[str, ...] = (
    "Khai mạc, giới thiệu thành phần tham dự tại các điểm cầu",
    "Báo cáo kết quả xây dựng chính quyền điện tử năm 2022",
    "Thảo luận về hạ tầng phòng họp không giấy cấp xã",
    "Biểu quyết thông qua kế hoạch chuyển đổi số",
    "Kết luận của đồng chí Chủ tịch UBND tỉnh",
)


def font_file(bold: bool = False) -> Path:
    """The Noto Sans shipped with diemcau (``web/fonts``)."""
    name = "NotoSans-Bold.ttf" if bold else "NotoSans-Regular.ttf"
    in_repo = REPO / "web" / "fonts" / name
    if in_repo.is_file():
        return in_repo
    return Path(str(resources.files("web") / "fonts" / name))  # an installed diemcau


def page_text(page: int) -> str:
    """The body text written on agenda page ``page`` (1-based), NFC: two seed paragraphs."""
    first = PARAGRAPHS[(page - 1) % len(PARAGRAPHS)]
    second = PARAGRAPHS[page % len(PARAGRAPHS)]
    return unicodedata.normalize("NFC", f"{first}\n{second}")


def _chart_jpeg(page: int) -> bytes:
    """A small photo-like picture (a different one per page, as in real agenda packs)."""
    image = Image.new("RGB", (480, 300), (250, 250, 245))
    draw = ImageDraw.Draw(image)
    for y in range(300):
        draw.line((0, y, 479, y), fill=(200 - y // 3, 220 - (y + page) % 60, 235))
    for bar in range(8):
        height = 40 + (bar * 37 + page * 53) % 200
        x = 20 + bar * 56
        draw.rectangle((x, 290 - height, x + 40, 290), fill=(180, 30 + bar * 25, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def agenda_pdf(path: Path, pages: int = 6, *, images: bool = True,
               drawings: bool = True) -> list[str]:
    """A Vietnamese meeting pack (A4): title, agenda items, body text, a table-like drawing and
    a picture on every page. Returns the body text written on each page."""
    doc = pymupdf.open()
    regular, bold = str(font_file()), str(font_file(bold=True))
    doc.set_metadata({"title": "Tài liệu hội nghị trực tuyến — chính quyền điện tử",
                      "author": "Văn phòng UBND tỉnh"})
    texts: list[str] = []
    for number in range(1, pages + 1):
        page = doc.new_page(width=595.28, height=841.89)
        page.insert_font(fontname="noto", fontfile=regular)
        page.insert_font(fontname="notob", fontfile=bold)
        page.insert_text((60, 60), "ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH", fontname="notob",
                         fontsize=12)
        page.insert_text((60, 80), f"Tài liệu phiên họp — trang {number}/{pages}",
                         fontname="noto", fontsize=10)
        item = AGENDA_ITEMS[(number - 1) % len(AGENDA_ITEMS)]
        page.insert_text((60, 110), f"Mục {(number - 1) % len(AGENDA_ITEMS) + 1}. {item}",
                         fontname="notob", fontsize=13)
        body = page_text(number)
        spare = page.insert_textbox(pymupdf.Rect(60, 125, 535, 420), body, fontname="noto",
                                    fontsize=11)
        if spare < 0:
            raise RuntimeError(f"body text of page {number} does not fit")
        texts.append(body)
        if drawings:
            shape = page.new_shape()
            for row in range(6):
                shape.draw_rect(pymupdf.Rect(60, 440 + row * 22, 535, 462 + row * 22))
            shape.draw_line((250, 440), (250, 572))
            shape.draw_circle((480, 700), 40)
            shape.finish(color=(0.2, 0.2, 0.4), fill=None, width=0.8)
            shape.commit()
            for row, label in enumerate(("Điểm cầu", "Tỉnh", "Huyện", "Xã", "Tổng")):
                page.insert_text((66, 456 + row * 22), label, fontname="noto", fontsize=10)
        if images:
            page.insert_image(pymupdf.Rect(60, 590, 360, 778), stream=_chart_jpeg(number))
    doc.subset_fonts()
    doc.save(path, garbage=3, deflate=True)
    doc.close()
    return texts


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF from object bodies (object ``i + 1`` is ``objects[i]``; 1 is the root)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def blank_pages_pdf(path: Path, pages: int, *, width: float = 595, height: float = 842) -> None:
    """``pages`` blank pages sharing one inherited MediaBox (10,000 pages in a few ms)."""
    kids = b" ".join(b"%d 0 R" % (3 + index) for index in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Count %d /MediaBox [0 0 %g %g] /Kids [%s] >>"
               % (pages, width, height, kids)]
    objects += [b"<< /Type /Page /Parent 2 0 R >>"] * pages
    path.write_bytes(_raw_pdf(objects))


def huge_page_pdf(path: Path, side: float = 14400) -> None:
    """One ``side`` x ``side`` pt page with some content (200 x 200 inches at 14400)."""
    doc = pymupdf.open()
    page = doc.new_page(width=side, height=side)
    page.insert_font(fontname="noto", fontfile=str(font_file()))
    page.insert_text((side * 0.1, side * 0.2), "Bản đồ quy hoạch điểm cầu", fontname="noto",
                     fontsize=side / 40)
    shape = page.new_shape()
    shape.draw_rect(pymupdf.Rect(side * 0.1, side * 0.3, side * 0.9, side * 0.9))
    shape.finish(color=(0, 0, 0.6), fill=(0.8, 0.9, 1.0), width=side / 500)
    shape.commit()
    doc.subset_fonts()
    doc.save(path, garbage=3, deflate=True)


def image_bomb_pdf(path: Path, side_px: int = 30000) -> None:
    """An A4 page whose one image expands to ``side_px``² RGB pixels (2.7 GB at 30000) from a
    ~40 KB stream: flate over run-length encoding of zeros. MuPDF decodes it subsampled, so it
    does not blow memory, but it costs seconds of CPU on every render."""
    doc = pymupdf.open()
    page = doc.new_page(width=595.28, height=841.89)
    seed = io.BytesIO()
    Image.new("RGB", (2, 2), "white").save(seed, "PNG")
    xref = page.insert_image(page.rect, stream=seed.getvalue())
    raw = side_px * side_px * 3
    runs = b"\x81\x00" * (raw // 128)  # RunLength: "repeat the next byte 128 times"
    tail = raw % 128
    if tail:
        runs += bytes([257 - tail, 0]) if tail > 1 else b"\x00\x00"
    data = zlib.compress(runs + b"\x80", 9)
    doc.update_stream(xref, data, compress=False)
    for key, value in (("Width", str(side_px)), ("Height", str(side_px)),
                       ("BitsPerComponent", "8"), ("ColorSpace", "/DeviceRGB"),
                       ("Filter", "[/FlateDecode /RunLengthDecode]"), ("DecodeParms", "null"),
                       ("SMask", "null"), ("Length", str(len(data)))):
        doc.xref_set_key(xref, key, value)
    doc.save(path)


def scanned_pdf(path: Path, source: Path) -> None:
    """Page 1 of ``source`` as a grey picture only, like a scan: no text layer."""
    with pymupdf.open(source) as original:
        pix = original[0].get_pixmap(dpi=100, colorspace=pymupdf.csGRAY)
        picture = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=70)
    doc = pymupdf.open()
    page = doc.new_page(width=595.28, height=841.89)
    page.insert_image(page.rect, stream=out.getvalue())
    doc.save(path, garbage=3, deflate=True)


@dataclass(frozen=True)
class SamplePdfs:
    """Where :func:`make_all` put each sample, and the text written on the agenda's pages."""

    directory: Path
    agenda: Path
    agenda_texts: tuple[str, ...]
    truncated: Path
    encrypted: Path
    owner_only: Path
    png_renamed: Path
    jpeg_renamed: Path
    html_renamed: Path
    empty: Path
    ten_thousand_pages: Path
    huge_page: Path
    oversized_page: Path
    image_bomb: Path
    scanned: Path


def make_all(directory: Path, *, agenda_pages: int = 6) -> SamplePdfs:
    directory.mkdir(parents=True, exist_ok=True)
    agenda = directory / "agenda.pdf"
    texts = agenda_pdf(agenda, agenda_pages)
    data = agenda.read_bytes()

    truncated = directory / "truncated.pdf"
    truncated.write_bytes(data[: len(data) // 2])

    encrypted = directory / "encrypted.pdf"
    owner_only = directory / "owner-only.pdf"
    with pymupdf.open(agenda) as doc:
        aes = pymupdf.PDF_ENCRYPT_AES_256  # type: ignore[attr-defined]
        doc.save(encrypted, encryption=aes, user_pw="mat-khau", owner_pw="chu-so-huu")
        doc.save(owner_only, encryption=aes, owner_pw="chu-so-huu",
                 permissions=pymupdf.PDF_PERM_PRINT)  # type: ignore[attr-defined]

    png_renamed = directory / "image-png.pdf"
    jpeg_renamed = directory / "image-jpeg.pdf"
    picture = Image.new("RGB", (120, 80), (200, 30, 40))
    with open(png_renamed, "wb") as out:
        picture.save(out, "PNG")
    with open(jpeg_renamed, "wb") as out:
        picture.save(out, "JPEG")
    html_renamed = directory / "page-html.pdf"
    html_renamed.write_text("<!doctype html><html><body><h1>Chương trình họp</h1>"
                            "<p>Không phải PDF.</p></body></html>", encoding="utf-8")
    empty = directory / "empty.pdf"
    empty.write_bytes(b"")

    ten_thousand = directory / "ten-thousand-pages.pdf"
    blank_pages_pdf(ten_thousand, 10_000)
    huge = directory / "huge-page.pdf"
    huge_page_pdf(huge)
    oversized = directory / "oversized-page.pdf"
    blank_pages_pdf(oversized, 2, width=20000, height=500)
    bomb = directory / "image-bomb.pdf"
    image_bomb_pdf(bomb)
    scanned = directory / "scanned.pdf"
    scanned_pdf(scanned, agenda)
    return SamplePdfs(directory, agenda, tuple(texts), truncated, encrypted, owner_only,
                      png_renamed, jpeg_renamed, html_renamed, empty, ten_thousand, huge,
                      oversized, bomb, scanned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--pages", type=int, default=6, help="pages of the agenda PDF")
    args = parser.parse_args()
    made = make_all(args.directory, agenda_pages=args.pages)
    for name, value in vars(made).items():
        if isinstance(value, Path) and value != made.directory:
            print(f"{name:20} {value} ({value.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
