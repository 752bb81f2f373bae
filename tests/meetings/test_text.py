"""Vietnamese folding and cleaning of user text."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from meetings.text import clean_line, clean_text, fold, nfc


def test_fold_strips_diacritics_and_d_bar() -> None:
    assert fold("Chính quyền số") == "chinh quyen so"
    assert fold("ĐÔNG LAI") == "dong lai"
    assert fold("Xã Đội Bình") == "xa doi binh"
    assert fold("  Hội   nghị\ttrực tuyến ") == "hoi nghi truc tuyen"


def test_fold_treats_nfd_like_nfc() -> None:
    text = "Thành phố Tuyên Quang"
    assert fold(unicodedata.normalize("NFD", text)) == fold(text)


def test_clean_line_and_text() -> None:
    nfd = unicodedata.normalize("NFD", "Điểm cầu")
    assert clean_line(f" {nfd}\x00\x1b\n ") == "Điểm cầu"
    assert clean_text("dòng 1\r\ndòng 2\x07") == "dòng 1\ndòng 2"


@given(st.text())
def test_fold_is_idempotent_and_ascii_for_vietnamese(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert nfc(clean_line(text)) == clean_line(text)
