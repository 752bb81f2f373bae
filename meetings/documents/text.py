"""Page text for search (tìm kiếm không dấu): "chinh quyen" finds "chính quyền", "dong" finds "Đông".

Each page's text is kept twice: ``text`` (NFC, exactly as extracted — what people read) and
``folded`` (:func:`meetings.text.fold`: no diacritics, đ→d, lower case, single spaces — what a
database column is searched with, see :func:`like_pattern`). A hit is reported as a snippet of
the *original* text with the match marked, so the match found on folded text must be mapped
back to offsets in the original:

* fast path (every Vietnamese page): each character folds to exactly one character, so
  ``text.translate(table)`` keeps offsets and the query's spaces become ``\\s+``;
* exact path (a page with a character that folds to none or several — a stray combining mark,
  "ß", a ligature): :func:`fold_with_offsets` builds the folded text with an offset map.

Real Vietnamese text sometimes writes Đ with the Icelandic eth "Ð" (U+00D0, it looks the
same; one of the seed articles does), which :func:`meetings.text.fold` leaves alone:
:func:`search_fold` maps it to Đ first, and everything here folds with it.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import Invalid
from ..text import clean_text, fold

MAX_QUERY_CHARS = 200
NON_UNIT = "\uffff"
_SPACES = re.compile(r"\s+")
_LOOKALIKES = str.maketrans({"\u00d0": "\u0110", "\u00f0": "\u0111"})  # Ð ð -> Đ đ


def search_fold(text: str) -> str:
    """:func:`meetings.text.fold`, with Đ written as "Ð" (eth) folded to d as well."""
    return fold(text.translate(_LOOKALIKES))


def normalise_page_text(raw: str) -> str:
    """Extracted text as stored: NFC, no control characters but newline and tab."""
    return clean_text(raw)


@dataclass(frozen=True)
class PageText:
    """The text of one page (1-based ``page``) of one document."""

    page: int
    text: str
    folded: str
    """:func:`search_fold` of ``text``: store it in a column and select with :func:`like_pattern`."""
    document: str = ""

    @classmethod
    def of(cls, page: int, text: str, document: str = "") -> PageText:
        text = normalise_page_text(text)
        return cls(page, text, search_fold(text), document)


def page_texts(texts: Sequence[str], document: str = "") -> tuple[PageText, ...]:
    """``PageText`` for each page of a document, from a worker's ``text_job`` result."""
    return tuple(PageText.of(index + 1, text, document) for index, text in enumerate(texts))


@dataclass(frozen=True)
class SearchHit:
    """One match: where it is, and a snippet of the original text around it."""

    document: str
    page: int
    start: int
    """Offset of the match in the page's ``text``."""
    end: int
    snippet: str
    """Original text around the match (diacritics kept, spaces collapsed, "…" where cut)."""
    highlight: tuple[int, int]
    """The match's span inside ``snippet``."""

    def marked(self, before: str = "[", after: str = "]") -> str:
        start, end = self.highlight
        return f"{self.snippet[:start]}{before}{self.snippet[start:end]}{after}{self.snippet[end:]}"

    def snippet_html(self) -> str:
        """The snippet HTML-escaped, the match in ``<mark>``."""
        start, end = self.highlight
        text = self.snippet
        return (f"{html.escape(text[:start])}<mark>{html.escape(text[start:end])}</mark>"
                f"{html.escape(text[end:])}")


@dataclass(frozen=True)
class FoldedText:
    """``folded == search_fold(text)``; folded character ``i`` comes from
    ``text[starts[i]:ends[i]]`` (a collapsed run of spaces maps to the whole run)."""

    text: str
    folded: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Offsets in ``text`` of the folded span ``[start, end)`` (non-empty)."""
        return self.starts[start], self.ends[end - 1]


@functools.lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    """``fold`` of one character, before space handling (memo of a pure function)."""
    decomposed = unicodedata.normalize("NFD", ch.translate(_LOOKALIKES))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return stripped.replace("đ", "d").replace("Đ", "D").casefold()


class _UnitFoldTable(dict[int, str]):
    """``str.translate`` table: a character's fold when it is one character, else NON_UNIT."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        value = folded if len(folded) == 1 else NON_UNIT
        if len(self) < 65536:
            self[code] = value
        return value


_UNIT_FOLD = _UnitFoldTable()  # memo table of a pure function, like _fold_char's cache


def fold_with_offsets(text: str) -> FoldedText:
    """Fold ``text`` exactly like :func:`search_fold`, keeping an offset map."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    space_start: int | None = None
    space_end = 0
    for index, ch in enumerate(text):
        folded = _fold_char(ch)
        if not folded:  # a mark folded away: it belongs to the character before it
            if ends and space_start is None:
                ends[-1] = index + 1
            continue
        for part in folded:
            if part.isspace():
                if space_start is None:
                    space_start = index
                space_end = index + 1
                continue
            if space_start is not None:
                if out:
                    out.append(" ")
                    starts.append(space_start)
                    ends.append(space_end)
                space_start = None
            out.append(part)
            starts.append(index)
            ends.append(index + 1)
    return FoldedText(text, "".join(out), tuple(starts), tuple(ends))


def compile_query(query: str) -> re.Pattern[str] | None:
    """The pattern matching ``query`` in folded text (None for an empty query)."""
    folded = search_fold(query)
    if len(folded) > MAX_QUERY_CHARS:
        raise Invalid(f"the search text is longer than {MAX_QUERY_CHARS} characters",
                      code="query_too_long", details={"max_chars": MAX_QUERY_CHARS})
    if not folded:
        return None
    return re.compile(r"\s+".join(re.escape(word) for word in folded.split(" ")))


def like_pattern(query: str) -> str | None:
    """``LIKE`` pattern (``ESCAPE '\\'``) for a ``folded`` column; None for an empty query.
    Rows it selects are then passed to :func:`search_pages` for snippets."""
    folded = search_fold(query)[:MAX_QUERY_CHARS]
    if not folded:
        return None
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class _PreparedPage:
    __slots__ = ("folded_map", "page", "searchable")

    def __init__(self, page: PageText) -> None:
        self.page = page
        unit = page.text.translate(_UNIT_FOLD)
        self.folded_map: FoldedText | None = None
        if NON_UNIT in unit:
            self.folded_map = fold_with_offsets(page.text)
            unit = self.folded_map.folded
        self.searchable = unit

    def matches(self, pattern: re.Pattern[str], most: int) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(self.searchable):
            if self.folded_map is None:
                spans.append(match.span())
            else:
                spans.append(self.folded_map.original_span(match.start(), match.end()))
            if len(spans) >= most:
                break
        return spans


class SearchIndex:
    """Pages of one meeting (or more), prepared once, searched many times in memory."""

    def __init__(self, pages: Iterable[PageText] = ()) -> None:
        self._pages = [_PreparedPage(page) for page in pages]

    def add(self, pages: Iterable[PageText]) -> None:
        self._pages.extend(_PreparedPage(page) for page in pages)

    def __len__(self) -> int:
        return len(self._pages)

    def search(self, query: str, *, limit: int = 50, per_page: int = 3,
               context: int = 60) -> list[SearchHit]:
        return _search(self._pages, query, limit=limit, per_page=per_page, context=context)


def search_pages(pages: Iterable[PageText], query: str, *, limit: int = 50, per_page: int = 3,
                 context: int = 60) -> list[SearchHit]:
    """Search pages fetched from anywhere (e.g. rows selected with :func:`like_pattern`).
    Hits come in the order of ``pages``; at most ``per_page`` per page and ``limit`` in all."""
    return _search((_PreparedPage(page) for page in pages), query, limit=limit,
                   per_page=per_page, context=context)


def _search(pages: Iterable[_PreparedPage], query: str, *, limit: int, per_page: int,
            context: int) -> list[SearchHit]:
    pattern = compile_query(query)
    hits: list[SearchHit] = []
    if pattern is None or limit < 1 or per_page < 1:
        return hits
    for prepared in pages:
        page = prepared.page
        for start, end in prepared.matches(pattern, min(per_page, limit - len(hits))):
            snippet, highlight = make_snippet(page.text, start, end, context)
            hits.append(SearchHit(page.document, page.page, start, end, snippet, highlight))
        if len(hits) >= limit:
            break
    return hits


def make_snippet(text: str, start: int, end: int, context: int = 60) -> tuple[str, tuple[int, int]]:
    """About ``context`` characters of ``text`` each side of ``[start, end)``, cut at spaces,
    with runs of spaces collapsed. Returns the snippet and the match's span in it."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    if left > 0 and not text[left - 1].isspace():  # do not begin inside a word
        space = _SPACES.search(text, left, start)
        left = space.end() if space else left
    if right < len(text) and not text[right].isspace():  # nor end inside one
        cut = max(text.rfind(" ", end, right), text.rfind("\n", end, right))
        right = cut if cut > end else right
    before = _SPACES.sub(" ", text[left:start]).lstrip()
    match = _SPACES.sub(" ", text[start:end])
    after = _SPACES.sub(" ", text[end:right]).rstrip()
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    snippet = f"{prefix}{before}{match}{after}{suffix}"
    begin = len(prefix) + len(before)
    return snippet, (begin, begin + len(match))
