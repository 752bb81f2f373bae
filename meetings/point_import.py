"""Reading bridge points from CSV or YAML files (nhập danh sách điểm cầu).

Pure parsing and validation: every problem is reported with its row number, and the caller
imports all rows or none.

Row numbers are what a person sees in an editor: for CSV the line number of the record
(the header is line 1), for YAML the line where the point's mapping starts.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Invalid
from .models import PointLevel
from .text import clean_line, fold

_SURROGATE = re.compile("[\ud800-\udfff]")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_NAME = 255
MAX_ROWS = 50_000  # far above the largest province (~250 points); bounds YAML alias tricks
MAX_DEPTH = 8

# Values accepted for ``level``, compared after folding (no diacritics, lower case), so
# "Xã", "xa" and "commune" are the same. "thành phố" is refused: it names both a province-level
# city (Cần Thơ) and a district-level one (TP Tuyên Quang).
LEVEL_WORDS: dict[str, PointLevel] = {
    "province": PointLevel.PROVINCE, "tinh": PointLevel.PROVINCE, "cap tinh": PointLevel.PROVINCE,
    "district": PointLevel.DISTRICT, "huyen": PointLevel.DISTRICT, "cap huyen": PointLevel.DISTRICT,
    "quan": PointLevel.DISTRICT, "thi xa": PointLevel.DISTRICT,
    "commune": PointLevel.COMMUNE, "xa": PointLevel.COMMUNE, "cap xa": PointLevel.COMMUNE,
    "phuong": PointLevel.COMMUNE, "thi tran": PointLevel.COMMUNE,
}
AMBIGUOUS_LEVELS = {"thanh pho", "tp"}

# Column headers accepted (folded), English or Vietnamese.
HEADER_ALIASES: dict[str, str] = {
    "code": "code", "ma": "code", "ma dinh danh": "code", "ma diem cau": "code", "ma don vi": "code",
    "name": "name", "ten": "name", "ten diem cau": "name", "ten don vi": "name",
    "level": "level", "cap": "level", "cap hanh chinh": "level",
    "parent": "parent", "parent_code": "parent", "parent code": "parent", "ma cap tren": "parent",
    "cap tren": "parent", "don vi cap tren": "parent",
    "children": "children", "con": "children",
}


@dataclass(frozen=True)
class PointRow:
    """One bridge point as read from a file; ``row`` is its 1-based row (line) number."""

    row: int
    code: str
    name: str
    level: PointLevel
    parent_code: str | None


@dataclass(frozen=True)
class RowError:
    """A problem with one row of an import file."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class ImportRejected(Invalid):
    """The file has errors; nothing was imported. ``details.errors`` lists ``{row, message}``."""

    def __init__(self, errors: list[RowError]):
        shown = "; ".join(map(str, errors[:20])) + (f"; … {len(errors) - 20} more" if len(errors) > 20 else "")
        super().__init__(
            f"import rejected, nothing was imported: {shown}",
            code="import_rejected",
            details={"errors": [{"row": e.row, "message": e.message} for e in errors]},
        )
        self.errors = errors


@dataclass
class ParsedFile:
    """What a file holds: the rows that read well and the errors of the others."""

    rows: list[PointRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ImportRejected(sorted(self.errors, key=lambda e: e.row))


def parse_level(text: str) -> PointLevel | str:
    """The level named by ``text``, or why it is not one."""
    folded = fold(text)
    level = LEVEL_WORDS.get(folded)
    if level is not None:
        return level
    if folded in AMBIGUOUS_LEVELS:
        return (f"level {text!r} is ambiguous (a province-level or a district-level city): "
                "write province/tỉnh or district/huyện")
    return f"level {text!r} is not province, district or commune (tỉnh, huyện, xã)"


def validate_row(row: int, raw: dict[str, Any], errors: list[RowError]) -> PointRow | None:
    """One row from its raw text fields, or None after appending its errors."""

    def text(key: str) -> str:
        value = raw.get(key)
        return "" if value is None else clean_line(str(value))

    if any(_SURROGATE.search(str(v)) for v in raw.values() if v is not None):
        errors.append(RowError(row, "holds text that is not valid Unicode (a lone surrogate escape)"))
        return None
    code, name, level_text, parent = text("code"), text("name"), text("level"), text("parent")
    before = len(errors)
    if not code:
        errors.append(RowError(row, "code is empty"))
    elif not CODE.match(code):
        errors.append(RowError(row, f"code {code!r} may only hold letters, digits, '.', '_' and '-' (max 64)"))
    if not name:
        errors.append(RowError(row, "name is empty"))
    elif len(name) > MAX_NAME:
        errors.append(RowError(row, f"name is longer than {MAX_NAME} characters"))
    if parent and not CODE.match(parent):
        errors.append(RowError(row, f"parent code {parent!r} is not a valid code"))
    level = parse_level(level_text) if level_text else "level is empty"
    if not isinstance(level, PointLevel):
        errors.append(RowError(row, level))
        return None
    if len(errors) > before:
        return None
    return PointRow(row=row, code=code, name=name, level=level, parent_code=parent or None)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRejected([RowError(line, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                             "save it as 'CSV UTF-8'")]) from None


def _delimiter(header_line: str) -> str:
    """The header's most frequent of ``,`` ``;`` ``tab`` (Excel in Vietnamese locales writes ``;``)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(data: bytes) -> ParsedFile:
    """Rows and row errors of a CSV file (UTF-8, with or without BOM; ``,`` ``;`` or tab)."""
    text = _decode(data)
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    out = ParsedFile()
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected([RowError(1, "the file is empty")]) from None
    except csv.Error as exc:
        raise ImportRejected([RowError(1, f"unreadable header: {exc}")]) from None
    columns = [HEADER_ALIASES.get(fold(clean_line(h))) for h in header]
    missing = {"code", "name", "level"} - {c for c in columns if c}
    if missing:
        raise ImportRejected([RowError(1, f"header lacks column(s): {', '.join(sorted(missing))} "
                                          f"(found: {', '.join(header) or 'nothing'})")])
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(RowError(start, f"unreadable CSV: {exc}"))
            break
        if not any(v.strip() for v in values):
            continue
        if len(out.rows) + len(out.errors) >= MAX_ROWS:
            out.errors.append(RowError(start, f"more than {MAX_ROWS} rows"))
            break
        if len(values) > len(columns) and any(v.strip() for v in values[len(columns):]):
            out.errors.append(RowError(start, f"{len(values)} fields where the header has {len(columns)}"))
            continue
        raw = {col: val for col, val in zip(columns, values) if col}
        parsed = validate_row(start, raw, out.errors)
        if parsed:
            out.rows.append(parsed)
    return out


class _Walker:
    """Walks a composed YAML node tree, so values stay the text that was written (a code
    ``010`` stays ``"010"``, not the octal number 8) and every entry knows its line."""

    def __init__(self, out: ParsedFile) -> None:
        self.out = out
        self.count = 0

    def items(self, node: yaml.Node, parent: str | None, depth: int) -> None:
        if not isinstance(node, yaml.SequenceNode):
            self.out.errors.append(RowError(node.start_mark.line + 1, "expected a list of points"))
            return
        for item in node.value:
            self.count += 1
            if self.count > MAX_ROWS:
                self.out.errors.append(RowError(item.start_mark.line + 1, f"more than {MAX_ROWS} points"))
                return
            self.entry(item, parent, depth)

    def entry(self, node: yaml.Node, parent: str | None, depth: int) -> None:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            self.out.errors.append(RowError(line, "expected a mapping with code, name, level"))
            return
        raw: dict[str, Any] = {}
        children: yaml.Node | None = None
        for key_node, value_node in node.value:
            key = HEADER_ALIASES.get(fold(str(key_node.value)), str(key_node.value))
            if key == "children":
                children = value_node
            elif isinstance(value_node, yaml.ScalarNode):
                raw[key] = None if value_node.tag == "tag:yaml.org,2002:null" else value_node.value
            elif key in ("code", "name", "level", "parent"):
                self.out.errors.append(RowError(value_node.start_mark.line + 1, f"{key} must be plain text"))
                return
        if parent and not raw.get("parent"):
            raw["parent"] = parent
        parsed = validate_row(line, raw, self.out.errors)
        if parsed:
            self.out.rows.append(parsed)
        if children is None or (isinstance(children, yaml.ScalarNode) and children.tag == "tag:yaml.org,2002:null"):
            return
        if depth >= MAX_DEPTH:
            self.out.errors.append(RowError(children.start_mark.line + 1, "points nested too deep"))
            return
        if not isinstance(children, yaml.SequenceNode):
            self.out.errors.append(RowError(children.start_mark.line + 1, "children must be a list"))
            return
        self.items(children, clean_line(str(raw.get("code") or "")) or None, depth + 1)


def read_yaml(data: bytes) -> ParsedFile:
    """Rows and row errors of a YAML file: a list of points (or ``points:`` holding one),
    each ``{code, name, level, parent?}`` with optional nested ``children``."""
    text = _decode(data)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ImportRejected([RowError(line, f"not valid YAML: {exc}")]) from None
    if isinstance(root, yaml.MappingNode):
        found = [v for k, v in root.value if str(k.value) == "points"]
        root = found[0] if found else None
    if not isinstance(root, yaml.SequenceNode):
        raise ImportRejected([RowError(1, "expected a list of points (or a mapping with a 'points' list)")])
    out = ParsedFile()
    _Walker(out).items(root, None, 0)
    return out


def detect_format(filename: str, data: bytes = b"", content_type: str = "") -> str:
    """``"csv"`` or ``"yaml"`` from the file name, else the content type, else the content."""
    lower = filename.lower()
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    if lower.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    if "." in lower.rsplit("/", 1)[-1]:
        raise Invalid("bridge points can be imported from .csv, .yaml or .yml files", code="unsupported_format")
    ctype = content_type.lower()
    if "yaml" in ctype:
        return "yaml"
    if "csv" in ctype or "tab-separated" in ctype:
        return "csv"
    head = data[:2048].decode("utf-8", "replace").lstrip("\ufeff").lstrip()
    first = head.split("\n", 1)[0]
    if head.startswith(("-", "points:", "---")) or (":" in first and not any(d in first for d in ",;\t")):
        return "yaml"
    return "csv"


def read_points_file(filename: str, data: bytes, content_type: str = "") -> ParsedFile:
    """Rows and row errors of a CSV or YAML file (chosen by :func:`detect_format`)."""
    if detect_format(filename, data, content_type) == "yaml":
        return read_yaml(data)
    return read_csv(data)


def parse_csv(data: bytes) -> list[PointRow]:
    parsed = read_csv(data)
    parsed.raise_if_errors()
    return parsed.rows


def parse_yaml(data: bytes) -> list[PointRow]:
    parsed = read_yaml(data)
    parsed.raise_if_errors()
    return parsed.rows


def parse_points_file(filename: str, data: bytes) -> list[PointRow]:
    """Rows from a ``.csv``, ``.yaml`` or ``.yml`` file, or :class:`ImportRejected`."""
    parsed = read_points_file(filename, data)
    parsed.raise_if_errors()
    return parsed.rows
