"""Vietnamese-aware text normalisation.

``fold`` lets "chinh quyen" find "chính quyền" and "Dong Lai" find "Đông Lai": NFC first (so
NFD input behaves), then strip combining marks, map đ/Đ to d, lower-case, collapse spaces.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_D_BAR = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")  # + lone surrogates


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    # đ/Đ, and the look-alike Icelandic ð/Ð that some Vietnamese sources type for Đ.
    stripped = stripped.translate(_D_BAR)
    return _SPACES.sub(" ", stripped.casefold()).strip()


def clean_line(text: str) -> str:
    """One line of user text: NFC, no control characters, no surrounding space."""
    return _CONTROL.sub("", nfc(text)).replace("\n", " ").replace("\r", " ").strip()


def clean_text(text: str) -> str:
    """Multi-line user text: NFC, no control characters except newline and tab."""
    return _CONTROL.sub("", nfc(text).replace("\r\n", "\n")).strip()
