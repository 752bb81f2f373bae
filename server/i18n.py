"""Translations (bản dịch): Vietnamese by default, English selectable.

The catalogs are Babel ``.po`` files under ``web/i18n/<locale>/LC_MESSAGES/messages.po`` with
English msgids. They are read at startup and compiled in memory (no ``.mo`` build step), so a
fresh checkout serves translated pages. Templates use Jinja's i18n extension (``_()``,
``{% trans %}``); static ES modules use ``_()`` from ``web/static/js/i18n.js`` and get their
strings from :meth:`I18n.js_catalog`, inlined into every page as JSON.

Update the catalogs after changing user-facing text::

    python -m server.i18n extract   # msgids from templates, JS and server/*.py → both .po files
    python -m server.i18n check     # exit 1 when a Vietnamese translation is missing
"""

from __future__ import annotations

import argparse
import io
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from . import __version__

# web/ sits next to server/ both in a checkout and in an installed wheel.
WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
I18N_ROOT = WEB_ROOT / "i18n"
LOCALES: tuple[str, ...] = ("vi", "en")
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
DISPLAY_TIMEZONE = "Asia/Ho_Chi_Minh"
DOMAIN = "messages"
# How a date-time is written on pages (Babel/CLDR patterns), e.g. "08:00, Thứ Ba, 01/12/2026".
DATE_PATTERNS = {"vi": "EEEE, dd/MM/yyyy", "en": "EEE d MMM yyyy"}
TIME_PATTERN = "HH:mm"
TIME_FIRST = {"vi": True, "en": False}  # "08:00, Thứ Ba, 01/12/2026" / "Tue 1 Dec 2026, 08:00"
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}  # each in its own language, never translated


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


# Messages for the API's stable error codes (``{"error": {"code"}}``, WS ``error.code``). The
# web UI shows these instead of the server's English ``message``. ``%(name)s`` placeholders are
# filled from the error's ``details`` (and ``seconds`` from Retry-After).
ERROR_MESSAGES: dict[str, str] = {
    "error": N_("Something went wrong. Please try again."),
    "internal": N_("Server error. Please try again later."),
    "http_error": N_("The request failed. Please try again."),
    "network": N_("Cannot reach the server. Check the network connection."),
    "not_found": N_("Not found."),
    "method_not_allowed": N_("This action is not available."),
    "too_large": N_("The data sent is too large."),
    "malformed_json": N_("The request could not be read."),
    "invalid": N_("The data sent is not valid."),
    "invalid_field": N_("A field has an invalid value: %(field)s."),
    "missing_field": N_("Please fill in the required field: %(field)s."),
    "conflict": N_("This conflicts with the current data."),
    "concurrent_change": N_("The data changed meanwhile. Reload the page and try again."),
    "unauthenticated": N_("Please log in to continue."),
    "bad_credentials": N_("Wrong username or password."),
    "rate_limited": N_("Too many attempts. Please wait %(seconds)s seconds and try again."),
    "csrf_failed": N_("The security check of this page failed. Reload the page and try again."),
    "forbidden": N_("You do not have permission to do this."),
    "invalid_token": N_("This link or login session is not valid."),
    "token_expired": N_("This login session or link has expired."),
    "account_disabled": N_("This account has been disabled."),
    "user_not_found": N_("No user has this username."),
    "invalid_username": N_("A username has 2–64 characters: letters a-z, digits, '.', '_' or '-'."),
    "username_taken": N_("This username is already taken."),
    "weak_password": N_("The password must have at least %(min_length)s characters."),
    "invalid_role": N_("This user's role does not fit that task."),
    "meeting_not_found": N_("The meeting does not exist."),
    "meeting_closed": N_("The meeting has ended."),
    "meeting_full": N_("The meeting already has the number of bridge points allowed to connect (%(cap)s). Please contact the organisers."),
    "node_full": N_("The server has reached its number of allowed connections (%(cap)s). Please contact the organisers."),
    "invalid_title": N_("Please enter a title (at most 500 characters)."),
    "invalid_time": N_("Check the times: the start needs a date and time, and the end must be after the start."),
    "invalid_transition": N_("The meeting cannot change to that state."),
    "empty_selection": N_("Choose the bridge points to invite."),
    "not_invited": N_("That bridge point is not invited to this meeting."),
    "point_not_found": N_("No bridge point has this code."),
    "point_disabled": N_("The bridge point is disabled."),
    "invalid_point": N_("The bridge point is not valid."),
    "invalid_code": N_("A code may only contain letters, digits, '.', '_' and '-' (at most 64)."),
    "invalid_name": N_("Please enter a name."),
    "invalid_level": N_("The level must be province, district or commune."),
    "duplicate_code": N_("This code is already registered."),
    "import_rejected": N_("The file has errors; nothing was imported."),
    "unsupported_format": N_("Unsupported file format. Use a CSV or YAML file."),
    "file_too_large": N_("The file is too large."),
    "file_not_found": N_("The file was not found."),
    "invalid_path": N_("The file path is not valid."),
    "invalid_parent": N_("The parent code does not fit this level."),
    "unknown_points": N_("Unknown bridge point codes: %(codes)s."),
    "host_point": N_("The host bridge point cannot be removed; choose another host first."),
    "user_disabled": N_("That user account is disabled."),
    "wrong_password": N_("The current password is wrong."),
    "cannot_change_self": N_("You cannot do this to your own account; ask another administrator."),
    "invalid_query": N_("A search or filter value is not valid."),
    "query_too_long": N_("The search text is too long (at most %(max_chars)s characters)."),
    "malformed_multipart": N_("The upload could not be read. Please try again."),
    "unsupported_media_type": N_("Unsupported file type."),
    # documents
    "invalid_document": N_("The document is not valid."),
    "not_pdf": N_("The file is not a PDF document."),
    "empty_file": N_("The file is empty."),
    "encrypted_pdf": N_("The PDF is password-protected. Remove the password and upload it again."),
    "too_many_pages": N_("The document has too many pages."),
    "page_too_large": N_("A page of the document is too large."),
    "corrupt_pdf": N_("The PDF is damaged and cannot be opened."),
    "timeout": N_("Processing the document took too long."),
    "page_not_found": N_("The page does not exist in this document."),
    "render_failed": N_("The page could not be displayed."),
    "invalid_page_kind": N_("The page could not be displayed."),
    # WebSocket protocol (server/ws/protocol.py ERROR_CODES)
    "unknown_type": N_("This version of the page is out of date. Reload the page."),
    "bad_version": N_("This version of the page is out of date. Reload the page."),
    "not_authenticated": N_("Please log in to continue."),
    "already_authenticated": N_("This connection is already logged in."),
    "resume_expired": N_("The connection was lost for too long; the page was updated again."),
    "session_ended": N_("Your session has ended (logged out, expired or access withdrawn). Please log in or join again."),
    "not_joined": N_("You are no longer in this meeting. Reload the page to join again."),
    "text_empty": N_("The message is empty."),
    "text_too_long": N_("The message is too long."),
    # media (WebSocket media.*)
    "invalid_sdp": N_("The video connection could not be set up. Reload the page."),
    "unsupported_codec": N_("This browser cannot send or receive video in a format the server supports."),
    "invalid_candidate": N_("The video connection could not be set up. Reload the page."),
    # meeting conduct: floor, attendance, votes, minutes
    "no_point": N_("Only a bridge point, or a delegate attending from one, can do this."),
    "already_requested": N_("Your point has already asked for the floor."),
    "floor_request_not_found": N_("This request to speak no longer exists."),
    "queue_empty": N_("Nobody is waiting for the floor."),
    "no_speaker": N_("Nobody has the floor."),
    "point_removed": N_("This bridge point was removed from the meeting."),
    "not_floor_holder": N_("Only the meeting's staff and the point holding the floor may share content."),
    "share_in_progress": N_("Someone else is already sharing content."),
    "no_share": N_("Nobody is sharing content."),
    "invalid_status": N_("Choose online, in the hall or absent."),
    "invalid_headcount": N_("The number of attendees is not valid."),
    "roll_call_open": N_("A roll call is already running."),
    "no_roll_call": N_("No roll call is running."),
    "vote_not_found": N_("This vote does not exist."),
    "vote_closed": N_("Voting has closed."),
    "vote_open": N_("Close the vote before publishing its result."),
    "already_voted": N_("You have already voted."),
    "not_eligible": N_("You are not among those entitled to this vote."),
    "not_present": N_("Only those present in the meeting may vote."),
    "invalid_choice": N_("This choice is not on the ballot."),
    "invalid_choices": N_("The choices of the vote are not valid."),
    "invalid_agenda_item": N_("This agenda item is not in the meeting."),
    "result_hidden": N_("The result has not been published yet."),
    "minutes_not_found": N_("This version of the minutes does not exist."),
    "meeting_locked": N_("The meeting is locked: no new participants may join."),
    # recordings (ghi hình)
    "recording_running": N_("The meeting is already being recorded."),
    "recording_not_running": N_("This recording is not running."),
    "recording_not_found": N_("This recording does not exist or has no file."),
    "recording_disabled": N_("Recording is turned off on this server."),
    "recording_failed": N_("The recording could not be started. Please try again."),
}

LEVEL_LABELS = {"province": N_("Province"), "district": N_("District"), "commune": N_("Commune")}
STATE_LABELS = {"scheduled": N_("Scheduled"), "open": N_("In session"), "closed": N_("Ended")}
ROLE_LABELS = {
    "admin": N_("Administrator"), "chair": N_("Chair"), "secretary": N_("Secretary"),
    "delegate": N_("Delegate"), "observer": N_("Observer"),
}


def catalog_path(locale: str, root: Path = I18N_ROOT) -> Path:
    return root / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, locale: str) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def compile_catalog(catalog: Catalog) -> Translations:
    """A gettext-compatible translations object, compiled in memory (no .mo on disk)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def parse_accept_language(header: str | None) -> list[str]:
    """Primary language subtags from an Accept-Language header, most preferred first."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().lower().replace("_", "-").split("-")[0]
        if language and language != "*" and quality > 0:
            ranked.append((-quality, index, language))
    return [language for _, _, language in sorted(ranked)]


def negotiate_locale(*, query: str | None, cookie: str | None, accept_language: str | None,
                     default: str) -> str:
    """``?lang=`` first, then the ``lang`` cookie, then Accept-Language, then the default."""
    for choice in (query, cookie):
        if choice and choice.strip().lower() in LOCALES:
            return choice.strip().lower()
    for language in parse_accept_language(accept_language):
        if language in LOCALES:
            return language
    return default if default in LOCALES else LOCALES[0]


def interpolate(message: str, params: dict[str, Any]) -> str:
    """Fill ``%(name)s`` placeholders; a missing name leaves the message as written."""
    try:
        return message % params if params else message
    except (KeyError, ValueError, TypeError):
        return message


@dataclass
class I18n:
    """The loaded catalogs of every locale, and what the web UI needs from them."""

    default_locale: str = "vi"
    root: Path = I18N_ROOT
    js_root: Path = WEB_ROOT / "static" / "js"
    catalogs: dict[str, Catalog] = field(default_factory=dict)
    translations: dict[str, Translations] = field(default_factory=dict)
    _js_catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for locale in LOCALES:
            catalog = read_catalog(catalog_path(locale, self.root), locale)
            self.catalogs[locale] = catalog
            self.translations[locale] = compile_catalog(catalog)

    def locale(self, locale: str | None) -> str:
        return locale if locale in LOCALES else self.default_locale

    def gettext(self, locale: str, message: str, **params: Any) -> str:
        return interpolate(self.translations[self.locale(locale)].gettext(message), params)

    def error_message(self, locale: str, code: str, **params: Any) -> str:
        return self.gettext(locale, ERROR_MESSAGES.get(code, ERROR_MESSAGES["error"]), **params)

    def _format(self, locale: str, value: datetime, pattern: str) -> str:
        return babel_format_datetime(value, pattern, tzinfo=ZoneInfo(DISPLAY_TIMEZONE), locale=locale)

    def format_datetime(self, locale: str, value: datetime | None) -> str:
        """A time as people in the meeting read it: local time (Asia/Ho_Chi_Minh)."""
        if value is None:
            return ""
        locale = self.locale(locale)
        time, date = self._format(locale, value, TIME_PATTERN), self._format(locale, value, DATE_PATTERNS[locale])
        return f"{time}, {date}" if TIME_FIRST[locale] else f"{date}, {time}"

    def format_range(self, locale: str, start: datetime | None, end: datetime | None) -> str:
        """``08:00 – 11:30, Thứ Ba, 01/12/2026``; the date twice only when the days differ."""
        if start is None or end is None:
            return self.format_datetime(locale, start or end)
        locale = self.locale(locale)
        date = DATE_PATTERNS[locale]
        if self._format(locale, start, "yyyy-MM-dd") != self._format(locale, end, "yyyy-MM-dd"):
            return f"{self.format_datetime(locale, start)} – {self.format_datetime(locale, end)}"
        times = f"{self._format(locale, start, TIME_PATTERN)} – {self._format(locale, end, TIME_PATTERN)}"
        day = self._format(locale, start, date)
        return f"{times}, {day}" if TIME_FIRST[locale] else f"{day}, {times}"

    def js_catalog(self, locale: str) -> dict[str, Any]:
        """Everything the static JS shows: its own msgids, error messages, labels (cached)."""
        locale = self.locale(locale)
        if locale not in self._js_catalogs:
            tr = self.translations[locale]
            wanted = {msgid for msgid, _ in js_messages(self.js_root)}
            self._js_catalogs[locale] = {
                "locale": locale,
                "timezone": DISPLAY_TIMEZONE,
                "messages": {m: tr.gettext(m) for m in sorted(wanted) if tr.gettext(m) != m},
                "errors": {code: tr.gettext(msg) for code, msg in ERROR_MESSAGES.items()},
                "levels": {k: tr.gettext(v) for k, v in LEVEL_LABELS.items()},
                "states": {k: tr.gettext(v) for k, v in STATE_LABELS.items()},
                "roles": {k: tr.gettext(v) for k, v in ROLE_LABELS.items()},
            }
        return self._js_catalogs[locale]


# --- extraction (maintainers' tool; also used by the tests) ----------------------------------

REPO = WEB_ROOT.parent
KEYWORDS: dict[str, Any] = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHOD_MAP: list[tuple[str, str]] = [
    ("web/templates/**.html", "jinja2.ext:babel_extract"),
    ("web/static/js/**.js", "javascript"),
    ("server/i18n.py", "python"),
    ("server/pages.py", "python"),
]
SOURCE_DIRS = ("web", "web/templates", "web/static", "web/static/js", "server")
OPTIONS_MAP: dict[str, dict[str, Any]] = {
    "web/templates/**.html": {"trimmed": "true"},
    "web/static/js/**.js": {"parse_template_string": "false"},
}


@dataclass(frozen=True)
class Extracted:
    msgid: str | tuple[str, str]
    location: tuple[str, int]


def extract(root: Path = REPO) -> list[Extracted]:
    """Every translatable string used by templates, JS and the page code, with its place."""

    def only_sources(dirpath: str) -> bool:
        return Path(dirpath).relative_to(root).as_posix() in SOURCE_DIRS

    out: list[Extracted] = []
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(root), METHOD_MAP, OPTIONS_MAP, keywords=KEYWORDS, comment_tags=("Translators:",),
        directory_filter=only_sources,
    ):
        msgid = message if isinstance(message, str) else (message[0], message[1])
        out.append(Extracted(msgid, (filename, lineno)))
    return out


def js_messages(js_root: Path) -> list[tuple[str, tuple[str, int]]]:
    """The singular msgids of the static ES modules (for the inline JS catalog)."""
    from babel.messages.extract import extract as babel_extract

    found: list[tuple[str, tuple[str, int]]] = []
    for path in sorted(js_root.glob("**/*.js")):
        with path.open("rb") as file:
            for lineno, message, _c, _ctx in babel_extract("javascript", file, keywords=KEYWORDS,
                                                           options={"parse_template_string": False}):
                for msgid in ([message] if isinstance(message, str) else list(message)[:2]):
                    if msgid:
                        found.append((msgid, (path.name, lineno)))
    return found


def template_catalog(root: Path = REPO) -> Catalog:
    template = Catalog(project="diemcau", domain=DOMAIN, charset="utf-8")
    for item in extract(root):
        flags = ("python-format",) if "%(" in (item.msgid if isinstance(item.msgid, str) else item.msgid[0]) else ()
        template.add(item.msgid, None, [item.location], flags=flags)
    return template


def update_catalogs(root: Path = REPO, locales: Iterable[str] = LOCALES) -> dict[str, list[str]]:
    """Merge the extracted msgids into each locale's .po; returns the untranslated msgids."""
    template = template_catalog(root)
    missing: dict[str, list[str]] = {}
    for locale in locales:
        path = catalog_path(locale, root / "web" / "i18n")
        catalog = read_catalog(path, locale) if path.exists() else Catalog(locale=locale, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.project, catalog.version, catalog.fuzzy = "diemcau", __version__, False
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            write_po(file, catalog, width=100, ignore_obsolete=True, include_previous=False)
        missing[locale] = [str(m.id) for m in catalog if m.id and not m.string]
    return missing


def untranslated(catalog: Catalog) -> list[str]:
    return [m.id if isinstance(m.id, str) else m.id[0] for m in catalog
            if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))]


def not_nfc(catalog: Catalog) -> list[str]:
    strings: list[str] = []
    for message in catalog:
        if message.id:
            strings.extend([message.string] if isinstance(message.string, str) else list(message.string or ()))
    return [s for s in strings if s and unicodedata.normalize("NFC", s) != s]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.i18n", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["extract", "check"])
    args = parser.parse_args(argv)
    if args.command == "extract":
        missing = update_catalogs()
        print(f"vi: {len(missing['vi'])} untranslated (en msgstrs may stay empty: the msgids are English)")
        for msgid in missing["vi"]:
            print(f"  {msgid!r}")
        return 0
    status = 0
    for locale in LOCALES:
        catalog = read_catalog(catalog_path(locale), locale)
        known = {m.id for m in catalog}
        absent = sorted({str(e.msgid) for e in extract() if e.msgid not in known})
        empty = untranslated(catalog) if locale == "vi" else []
        for msgid in absent:
            print(f"{locale}: not in the catalog: {msgid!r}")
        for msgid in empty:
            print(f"{locale}: untranslated: {msgid!r}")
        status |= bool(absent or empty or not_nfc(catalog))
    return status


if __name__ == "__main__":
    sys.exit(main())
