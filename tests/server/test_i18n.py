"""The translation catalogs: complete, NFC Vietnamese, consistent placeholders, negotiation."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC
from pathlib import Path

import pytest

from server.i18n import (
    ERROR_MESSAGES,
    LEVEL_LABELS,
    LOCALES,
    ROLE_LABELS,
    STATE_LABELS,
    WEB_ROOT,
    I18n,
    catalog_path,
    extract,
    interpolate,
    js_messages,
    negotiate_locale,
    not_nfc,
    parse_accept_language,
    read_catalog,
    untranslated,
)

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
VIETNAMESE_LETTERS = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.IGNORECASE)


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    found = {e.msgid for e in extract()}
    return {m if isinstance(m, str) else m[0] for m in found}


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(default_locale="vi")


def test_extraction_finds_templates_js_and_python(extracted: set[str]) -> None:
    assert "Log in" in extracted  # templates
    assert "Enter your username and password." in extracted  # static JS
    assert ERROR_MESSAGES["bad_credentials"] in extracted  # server/i18n.py N_ markers
    assert "In session now" in extracted  # server/pages.py


@pytest.mark.parametrize("locale", LOCALES)
def test_every_msgid_is_in_the_catalog(extracted: set[str], locale: str) -> None:
    catalog = read_catalog(catalog_path(locale), locale)
    known = {m.id for m in catalog if m.id}
    missing = sorted(extracted - known)
    assert not missing, f"run `python -m server.i18n extract` and translate: {missing}"


def test_vietnamese_translates_everything_in_nfc() -> None:
    catalog = read_catalog(catalog_path("vi"), "vi")
    assert not untranslated(catalog), "untranslated vi msgids"
    assert not not_nfc(catalog), "vi translations must be NFC"
    assert not [m.id for m in catalog if m.id and m.fuzzy], "fuzzy vi translations are not served"


def test_placeholders_survive_translation() -> None:
    catalog = read_catalog(catalog_path("vi"), "vi")
    for message in catalog:
        if message.id and message.string:
            assert set(PLACEHOLDER.findall(str(message.id))) == set(PLACEHOLDER.findall(str(message.string))), message.id


def test_catalog_files_are_nfc_utf8() -> None:
    for locale in LOCALES:
        text = catalog_path(locale).read_text(encoding="utf-8")
        assert unicodedata.normalize("NFC", text) == text


def test_key_terms(i18n: I18n) -> None:
    vi = {msgid: i18n.gettext("vi", msgid) for msgid in (
        "Bridge points", "Meetings", "Chair", "Secretary", "Log in", "Log out", "Province", "District", "Commune")}
    assert vi == {"Bridge points": "Điểm cầu", "Meetings": "Cuộc họp", "Chair": "Chủ trì", "Secretary": "Thư ký",
                  "Log in": "Đăng nhập", "Log out": "Đăng xuất", "Province": "Tỉnh", "District": "Huyện",
                  "Commune": "Xã"}
    assert i18n.gettext("en", "Bridge points") == "Bridge points"
    assert i18n.error_message("vi", "rate_limited", seconds=30) == (
        "Bạn đã thử quá nhiều lần. Vui lòng đợi 30 giây rồi thử lại.")
    assert i18n.error_message("en", "csrf_failed").startswith("The security check")
    assert i18n.error_message("vi", "no_such_code") == i18n.gettext("vi", ERROR_MESSAGES["error"])


def _codes_in_source() -> set[str]:
    codes: set[str] = set()
    pattern = re.compile(r"""\bcode(?:_)?\s*=\s*["']([a-z][a-z0-9_]+)["']""")
    for package in ("meetings", "server"):
        for path in (REPO / package).rglob("*.py"):
            codes.update(pattern.findall(path.read_text(encoding="utf-8")))
    try:
        from server.ws.protocol import ERROR_CODES
    except ImportError:  # pragma: no cover - the WebSocket protocol module is optional here
        ERROR_CODES = {}
    codes.update(ERROR_CODES)
    from meetings.errors import DomainError

    def subclasses(cls: type) -> list[type]:
        return [cls] + [s for c in cls.__subclasses__() for s in subclasses(c)]

    codes.update(cls.code for cls in subclasses(DomainError))
    return codes


def test_every_api_error_code_has_a_translated_message(i18n: I18n) -> None:
    missing = sorted(_codes_in_source() - set(ERROR_MESSAGES))
    assert not missing, f"add these error codes to server/i18n.py ERROR_MESSAGES: {missing}"
    for code in ("bad_credentials", "forbidden", "rate_limited", "csrf_failed", "unauthenticated"):
        assert i18n.error_message("vi", code) != ERROR_MESSAGES[code]


def test_labels_are_translated(i18n: I18n) -> None:
    for labels in (LEVEL_LABELS, STATE_LABELS, ROLE_LABELS):
        for msgid in labels.values():
            assert i18n.gettext("vi", msgid) != msgid


def test_js_catalog_carries_every_js_string(i18n: I18n) -> None:
    wanted = {msgid for msgid, _ in js_messages(WEB_ROOT / "static" / "js")}
    assert "Online" in wanted and "Connecting…" in wanted
    catalog = i18n.js_catalog("vi")
    assert wanted <= set(catalog["messages"])
    assert set(catalog["errors"]) == set(ERROR_MESSAGES)
    assert i18n.js_catalog("en")["messages"] == {}  # English is the msgid itself


def test_templates_and_js_hold_no_vietnamese_text() -> None:
    """User-facing text lives in the catalogs, not in templates or scripts."""
    offenders = []
    for path in list((WEB_ROOT / "templates").rglob("*.html")) + list((WEB_ROOT / "static" / "js").rglob("*.js")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if VIETNAMESE_LETTERS.search(line):
                offenders.append(f"{path.name}:{lineno}")
    assert not offenders


def test_accept_language_parsing() -> None:
    assert parse_accept_language("en-US,en;q=0.9,vi;q=0.8") == ["en", "en", "vi"]
    assert parse_accept_language("vi;q=0.2, en;q=0.7, *;q=0.1") == ["en", "vi"]
    assert parse_accept_language("fr;q=0, de;q=x") == []
    assert parse_accept_language(None) == []


@pytest.mark.parametrize(("query", "cookie", "header", "default", "expected"), [
    (None, None, None, "vi", "vi"),
    (None, None, None, "en", "en"),
    ("en", "vi", "vi", "vi", "en"),
    ("xx", "en", "vi", "vi", "en"),
    (None, None, "en-GB,en;q=0.8", "vi", "en"),
    (None, None, "fr-FR, vi;q=0.5", "en", "vi"),
    (None, "EN", None, "vi", "en"),
])
def test_negotiation_order(query: str | None, cookie: str | None, header: str | None, default: str,
                           expected: str) -> None:
    assert negotiate_locale(query=query, cookie=cookie, accept_language=header, default=default) == expected


def test_interpolate_is_forgiving() -> None:
    assert interpolate("Dòng %(row)s: %(message)s", {"row": 3, "message": "x"}) == "Dòng 3: x"
    assert interpolate("%(missing)s", {"other": 1}) == "%(missing)s"
    assert interpolate("100%", {}) == "100%"


def test_datetime_format(i18n: I18n) -> None:
    from datetime import datetime

    at = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 06:30 on Tuesday 3 March in Vietnam
    assert i18n.format_datetime("vi", at) == "06:30, Thứ Ba, 03/03/2026"
    assert i18n.format_datetime("en", at) == "Tue 3 Mar 2026, 06:30"
    assert i18n.format_datetime("vi", None) == ""
    end = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)
    assert i18n.format_range("vi", at, end) == "06:30 – 11:00, Thứ Ba, 03/03/2026"
    assert i18n.format_range("en", at, end) == "Tue 3 Mar 2026, 06:30 – 11:00"
    later = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    assert i18n.format_range("vi", at, later) == "06:30, Thứ Ba, 03/03/2026 – 08:00, Thứ Tư, 04/03/2026"
    assert i18n.format_range("vi", at, None) == "06:30, Thứ Ba, 03/03/2026"


def test_check_command_passes() -> None:
    from server.i18n import main

    assert main(["check"]) == 0
