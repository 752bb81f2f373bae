"""Searching page text with or without diacritics; snippets show the original text."""

from __future__ import annotations

import statistics
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetings.documents.text import (
    PageText,
    SearchIndex,
    fold_with_offsets,
    like_pattern,
    make_snippet,
    page_texts,
    search_fold,
    search_pages,
)
from meetings.errors import Invalid
from meetings.text import fold
from tests.data.make_pdfs import PARAGRAPHS

PAGES = page_texts([
    "ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH\nChương trình hội nghị trực tuyến",
    "Xây dựng chính quyền điện tử tại xã Đông Lai (Tân Lạc).\nChính quyền số là trụ cột.",
    "Toàn tỉnh có 87 điểm cầu; cấp xã có 56 điểm cầu.",
    "",  # a scanned page: no text layer
    "Ðến nay, TP Cần Thơ đã triển khai chuyển đổi số (CÐS).",  # Đ typed as Icelandic eth
], document="doc-1")


def test_search_without_diacritics_finds_the_original() -> None:
    hits = search_pages(PAGES, "chinh quyen", context=100)
    assert [(hit.page, hit.snippet[hit.highlight[0]:hit.highlight[1]]) for hit in hits] == [
        (2, "chính quyền"), (2, "Chính quyền")]
    assert hits[0].marked() == ("Xây dựng [chính quyền] điện tử tại xã Đông Lai (Tân Lạc). "
                                "Chính quyền số là trụ cột.")
    assert hits[0].document == "doc-1"
    assert PAGES[1].text[hits[0].start:hits[0].end] == "chính quyền"


def test_search_with_diacritics_and_d_bar() -> None:
    assert [hit.page for hit in search_pages(PAGES, "Chính quyền điện tử")] == [2]
    for query in ("dong lai", "Đông Lai", "ĐÔNG LAI", "đông lai"):
        (hit,) = search_pages(PAGES, query)
        assert hit.marked().count("[Đông Lai]") == 1
    (hit,) = search_pages(PAGES, "den nay")
    assert hit.page == 5 and hit.marked().startswith("[Ðến nay]")
    assert [hit.page for hit in search_pages(PAGES, "cds")] == [5]
    assert [hit.page for hit in search_pages(PAGES, "diem cau")] == [3, 3]


def test_a_query_spans_line_breaks_and_runs_of_spaces() -> None:
    pages = [PageText.of(1, "kết nối   liên\nthông với Cổng Dịch vụ công")]
    (hit,) = search_pages(pages, "ket noi lien thong")
    assert hit.snippet == "kết nối liên thông với Cổng Dịch vụ công"
    assert hit.highlight == (0, len("kết nối liên thông"))


def test_nothing_found_and_empty_queries() -> None:
    assert search_pages(PAGES, "ngân sách") == []
    assert search_pages(PAGES, "   ") == []
    assert SearchIndex(PAGES).search("") == []
    with pytest.raises(Invalid) as caught:
        search_pages(PAGES, "x" * 201)
    assert caught.value.code == "query_too_long"


def test_limits_per_page_and_in_all() -> None:
    pages = page_texts(["điểm cầu " * 20] * 10)
    assert len(search_pages(pages, "diem cau")) == 30  # 3 per page, 10 pages
    assert len(search_pages(pages, "diem cau", limit=7)) == 7
    assert len(SearchIndex(pages).search("diem cau", per_page=1)) == 10


def test_snippets_are_cut_at_word_boundaries() -> None:
    text = " ".join(PARAGRAPHS)
    (hit,) = search_pages([PageText.of(4, text)], "231 diem cau")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert hit.snippet[hit.highlight[0]:hit.highlight[1]] == "231 điểm cầu"
    words = set(text.split())
    assert all(word in words for word in hit.snippet.strip("…").split())
    assert "<mark>231 điểm cầu</mark>" in hit.snippet_html()


def test_snippet_html_is_escaped() -> None:
    (hit,) = search_pages([PageText.of(1, "<b>Kết luận</b> & biểu quyết")], "ket luan")
    assert hit.snippet_html() == "&lt;b&gt;<mark>Kết luận</mark>&lt;/b&gt; &amp; biểu quyết"


def test_nfd_and_odd_characters_map_back_to_the_original() -> None:
    nfd = unicodedata.normalize("NFD", "chính quyền")
    folded = fold_with_offsets(f"Xã {nfd} ﬁnal Straße")
    assert folded.folded == "xa chinh quyen final strasse"
    start = folded.folded.index("chinh quyen")
    span = folded.original_span(start, start + len("chinh quyen"))
    assert folded.text[span[0]:span[1]] == nfd
    start = folded.folded.index("final")
    span = folded.original_span(start, start + 5)
    assert folded.text[span[0]:span[1]] == "ﬁnal"
    # a page holding such characters takes the exact path and still highlights them
    (hit,) = search_pages([PageText.of(1, "Ông Straße đã phát biểu")], "strasse da")
    assert hit.marked() == "Ông [Straße đã] phát biểu"


def test_page_text_is_nfc_and_its_fold_is_the_column_to_search() -> None:
    page = PageText.of(1, unicodedata.normalize("NFD", "Điểm cầu xã\x07 Đông Lai"))
    assert page.text == "Điểm cầu xã Đông Lai"
    assert page.folded == fold(page.text) == "diem cau xa dong lai"
    assert search_fold("CÐS Ðảng") == "cds dang"  # meetings.text.fold leaves "ð" alone
    assert like_pattern("Điểm 100%_cầu") == "%diem 100\\%\\_cau%"
    assert like_pattern("  ") is None


def test_make_snippet_without_context_cut() -> None:
    assert make_snippet("Biểu quyết", 0, 5) == ("Biểu quyết", (0, 5))


VIETNAMESE = st.text(
    alphabet=st.sampled_from(list("aăâeêioôơuưyđĐÐ ÁÀẢÃẠẤẦẨẪẬáàảãạếềểễệốồổỗộớờởỡợứừửữự \n\t")
                             + ["\u0301", "\u0323", "ß", "ﬁ", "İ"]),
    max_size=60)


@settings(max_examples=300, deadline=None)
@given(VIETNAMESE)
def test_fold_with_offsets_is_exactly_the_search_fold(text: str) -> None:
    assert fold_with_offsets(text).folded == search_fold(text)


@settings(max_examples=300, deadline=None)
@given(VIETNAMESE, st.integers(0, 60), st.integers(1, 20))
def test_every_hit_is_a_span_whose_fold_holds_the_query(text: str, at: int, length: int) -> None:
    page = PageText.of(1, text)
    query = page.text[at:at + length]
    if not search_fold(query):
        return
    hits = search_pages([page], query, per_page=100, limit=100)
    assert hits, (page.text, query)
    for hit in hits:  # a match inside "ﬁ" (folds to "fi") highlights the whole "ﬁ"
        assert search_fold(query) in search_fold(page.text[hit.start:hit.end])


def test_search_over_a_thousand_pages_is_fast() -> None:
    texts = [" ".join(PARAGRAPHS[index % len(PARAGRAPHS):] + PARAGRAPHS[:3])
             for index in range(1000)]
    index = SearchIndex(page_texts(texts))
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        index.search("chinh quyen dien tu")
        index.search("không có trong tài liệu")
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.2  # generous on a shared runner; bench reports ms
