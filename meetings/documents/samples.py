"""Vietnamese sample documents for the demo (tài liệu mẫu): generated PDFs, no binary files.

The text is taken from a provincial e-government news article about Tuyên Quang (kept here
because the seed articles are not shipped); pages are written with the Noto Sans shipped in
``web/fonts`` (the base-14 fonts cannot draw Vietnamese).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pymupdf

PARAGRAPHS: tuple[str, ...] = (
    'Mặc dù còn có nhiều khó khăn so với các địa phương khác trong cả nước, nhưng trong những năm qua, các cấp, ngành, địa phương trong tỉnh luôn quan tâm đầu tư hạ tầng, kỹ thuật, đẩy mạnh ứng dụng công nghệ thông tin (CNTT) trong hoạt động của cơ quan hành chính nhằm đáp ứng đòi hỏi của công cuộc đổi mới. Để từng bước hiện đại hóa nền hành chính công, tỉnh đã có nhiều văn bản chỉ đạo và đã được các cấp, các ngành tổ chức triển khai đồng bộ từ tỉnh tới xã. Trước hết là hạ tầng kỹ thuật, đến nay 100% các cơ quan nhà nước trên địa bàn tỉnh đã có mạng Internet và hệ thống mạng nội bộ. Tỷ lệ cán bộ, công chức tại UBND cấp xã trang bị máy tính đạt 98,6%. Hạ tầng kỹ thuật đảm bảo các điều kiện thực hiện kết nối, triển khai các ứng dụng CNTT dùng chung.',
    'Các cán bộ, công chức tại các cơ quan hành chính nhà nước thường xuyên sử dụng thư điện tử trong công việc đạt tỷ lệ 98%. Hệ thống phần mềm Quản lý văn bản và điều hành dùng chung cho tất cả các cơ quan nhà nước cấp tỉnh tới cấp xã, đảm bảo liên thông tới Trung ương, tỷ lệ văn bản trao đổi giữa các cơ quan hành chính nhà nước hoàn toàn dưới dạng điện tử đạt 92%. Việc thực hiện chứng thư đã áp dụng tới 3 cấp tỉnh, huyện, xã. Chữ ký số chuyên dùng đã được tích hợp vào hệ thống Phần mềm quản lý văn bản điều hành tại các cơ quan, đơn vị. Toàn tỉnh có 87 điểm cầu hội nghị truyền hình trực tuyến, trong đó cấp tỉnh có 21 điểm cầu, cấp huyện có 10 điểm cầu, cấp xã có 56 điểm cầu. Hiện nay, tỉnh đang thực hiện kết nối với các hệ thống thông tin, cơ sở dữ liệu của các bộ, ngành Trung ương để kết nối, liên thông, chia sẻ thông tin, dữ liệu.',
    'Hệ thống dịch vụ hành chính công - Một cửa điện tử của tỉnh (http://dichvucong.tuyenquang.gov.vn) được triển khai theo mô hình một hệ thống tập trung tới các sở, ban, ngành, UBND huyện, thành phố. Đến nay, tỉnh ta đã thực hiện cung cấp 1.632 dịch vụ công, trong đó mức độ 3 và 4 là 835 dịch vụ (đạt tỷ lệ 51,16%). 100% sở, ban, ngành, UBND huyện, thành phố có Trang thông tin điện tử, tạo môi trường giao tiếp giữa người dân, doanh nghiệp với chính quyền; công khai tiến độ giải quyết hồ sơ, văn bản đi, đến của các sở, ban, ngành; đăng tải các dịch vụ công trực tuyến;... Cổng thông tin điện tử của tỉnh đã tích hợp, kết nối, cung cấp 254 dịch vụ công trên Cổng dịch vụ công Quốc gia.',
    'Để hiện đại hóa hành chính công, Sở Tư pháp đẩy mạnh ứng dụng công nghệ thông tin vào hoạt động chuyên môn, nghiệp vụ. Đây là một trong những hoạt động nổi bật của ngành trong những năm qua, với việc xây dựng, duy trì, khai thác, sử dụng, quản lý 12 phần mềm ứng dụng chuyên ngành trong quản lý các lĩnh vực công tác tư pháp; thực hiện trao đổi 100% văn bản điện tử (trừ văn bản mật) đã và đang phát huy vai trò quan trọng trong nâng cao chất lượng, đảm bảo an toàn cho hoạt động công vụ, chuyên môn, nghiệp vụ... Chính vì vậy, từ năm 2016 đến nay, Sở đã tiết kiệm chi phí hàng tỷ đồng từ các giải pháp này.',
    'Các huyện cũng đã chủ động khắc phục khó khăn về kinh phí để từng bước hiện đại hóa nền hành chính, đầu tư xây dựng bộ phận một cửa điện tử hiện đại, vận hành giải quyết liên thông từ cấp xã lên huyện.',
    'Huyện Lâm Bình, Na Hang đã sớm lắp đặt và triển khai hệ thống Hội nghị trực tuyến giữa cấp huyện và các xã góp phần tiết kiệm thời gian, chi phí đi lại cho đội ngũ cán bộ chủ chốt cấp xã, nâng cao hiệu quả công việc. Bên cạnh đó, UBND các huyện còn tận dụng tối đa ứng dụng Zalo tạo nhóm làm việc của lãnh đạo UBND huyện với các doanh nghiệp, HTX và nhóm zalo của lãnh đạo UBND huyện với đội ngũ cán bộ, viên chức làm công tác cải cách TTHC. Các huyện đã đầu tư lắp đặt Hệ thống đánh giá mức độ hài lòng của người dân đối với cán bộ, công chức; lắp đặt hệ thống camera theo dõi quá trình giải quyết TTHC cho người dân. Hiện các huyện đã và đang tiến hành triển khai phòng họp không giấy.',
    'Để hiện đại hóa hành chính công, các xã đã dành nguồn lực đầu tư các trang thiết bị, máy móc làm việc cho bộ phận giao dịch một cửa, một cửa liên thông đồng thời tăng cường ứng dụng CNTT vào quá trình tiếp nhận, xử lý, giải quyết công việc cho tổ chức, cá nhân. Đặc biệt, sau khi đầu tư đã đảm bảo cho bộ phận tiếp nhận và trả kết quả tại các xã, thị trấn hoạt động độc lập, chuyên trách, liên thông giữa các cơ quan, đơn vị và tiến tới chuyên nghiệp, hiện đại, tạo bước đột phá trong CCHC.',
    'Ngay cả ở xã vùng cao như Thượng Nông (Na Hang), tất cả cán bộ công chức xã được thực hiện công việc trên phần mềm Quản lý văn bản và điều hành, sử dụng chứng thư, chữ ký số. Bộ phận một cửa được đầu tư đồng bộ với đầy đủ trang thiết bị, kết nối liên thông với các phòng ban của huyện, lắp đặt hệ thống họp trực tuyến với huyện. Đồng chí Lương Xuân Hướng, Bí thư Đảng ủy xã Thượng Nông cho biết, việc tăng cường ứng dụng CNTT ở xã không chỉ tạo thuận lợi cho cán bộ, công chức xã xử lý công việc mà việc giải quyết TTHC cho người dân cũng được nhanh chóng, nhất là đối với các TTHC liên thông, người dân không phải về huyện để giải quyết TTHC như trước đây.',
)


@dataclass(frozen=True)
class SampleDocument:
    """One demo document: its title, the agenda item it belongs to (0-based) and pages."""

    title: str
    agenda_index: int
    pages: int
    restricted: bool = False


SAMPLES: tuple[SampleDocument, ...] = (
    SampleDocument("Báo cáo kết quả xây dựng chính quyền điện tử tỉnh Tuyên Quang", 1, 4),
    SampleDocument("Tờ trình kế hoạch chuyển đổi số cấp xã", 3, 2),
    SampleDocument("Dự thảo kết luận của Chủ tịch UBND tỉnh (tài liệu hạn chế)", 4, 1, restricted=True),
)


def font_path(bold: bool = False) -> Path:
    """The Noto Sans shipped with diemcau (the checkout's ``web/fonts`` or the installed one)."""
    name = "NotoSans-Bold.ttf" if bold else "NotoSans-Regular.ttf"
    in_repo = Path(__file__).resolve().parents[2] / "web" / "fonts" / name
    if in_repo.is_file():
        return in_repo
    return Path(str(resources.files("web") / "fonts" / name))


def sample_pdf(sample: SampleDocument) -> bytes:
    """An A4 PDF with a header, the title and paragraphs of the sample text on every page."""
    doc = pymupdf.open()
    doc.set_metadata({"title": sample.title, "author": "Văn phòng UBND tỉnh Tuyên Quang"})
    regular, bold = str(font_path()), str(font_path(bold=True))
    for number in range(1, sample.pages + 1):
        page = doc.new_page(width=595.28, height=841.89)
        page.insert_font(fontname="noto", fontfile=regular)
        page.insert_font(fontname="notob", fontfile=bold)
        page.insert_text((60, 60), "ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG", fontname="notob", fontsize=12)
        page.insert_text((60, 80), f"Trang {number}/{sample.pages}", fontname="noto", fontsize=10)
        page.insert_textbox(pymupdf.Rect(60, 100, 535, 160), sample.title, fontname="notob", fontsize=14)
        first = PARAGRAPHS[(number - 1) % len(PARAGRAPHS)]
        second = PARAGRAPHS[number % len(PARAGRAPHS)]
        page.insert_textbox(pymupdf.Rect(60, 170, 535, 780), f"{first}\n\n{second}", fontname="noto",
                            fontsize=11)
    doc.subset_fonts()
    data: bytes = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data
