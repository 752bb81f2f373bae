"""Reading bridge points from CSV or YAML files (nhập danh sách điểm cầu).

Pure parsing and validation: every problem is reported with its row number, and the caller
imports all rows or none.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from .errors import Invalid
from .models import PointLevel
from .text import clean_line

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Column values accepted for ``level``, English or Vietnamese, with or without diacritics.
LEVEL_WORDS = {
    "province": PointLevel.PROVINCE, "tinh": PointLevel.PROVINCE, "tỉnh": PointLevel.PROVINCE,
    "thanh pho": PointLevel.PROVINCE,
    "district": PointLevel.DISTRICT, "huyen": PointLevel.DISTRICT, "huyện": PointLevel.DISTRICT,
    "commune": PointLevel.COMMUNE, "xa": PointLevel.COMMUNE, "xã": PointLevel.COMMUNE,
}
HEADER_ALIASES = {
    "code": "code", "ma": "code", "mã": "code", "ma dinh danh": "code", "mã định danh": "code",
    "name": "name", "ten": "name", "tên": "name",
    "level": "level", "cap": "level", "cấp": "level",
    "parent": "parent", "parent_code": "parent", "ma cap tren": "parent", "mã cấp trên": "parent",
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
    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class ImportRejected(Invalid):
    """The file has errors; nothing was imported."""

    def __init__(self, errors: list[RowError]):
        shown = "; ".join(map(str, errors[:20])) + (f"; … {len(errors) - 20} more" if len(errors) > 20 else "")
        super().__init__(
            f"import rejected, nothing was imported: {shown}",
            code="import_rejected",
            details={"errors": [{"row": e.row, "message": e.message} for e in errors]},
        )
        self.errors = errors


def _validate(row: int, raw: dict[str, Any], errors: list[RowError]) -> PointRow | None:
    def text(key: str) -> str:
        value = raw.get(key)
        return "" if value is None else clean_line(str(value))

    code, name, level_text, parent = text("code"), text("name"), text("level").lower(), text("parent")
    before = len(errors)
    if not code:
        errors.append(RowError(row, "code is empty"))
    elif not CODE.match(code):
        errors.append(RowError(row, f"code {code!r} may only hold letters, digits, '.', '_' and '-' (max 64)"))
    if not name:
        errors.append(RowError(row, "name is empty"))
    elif len(name) > 255:
        errors.append(RowError(row, "name is longer than 255 characters"))
    level = LEVEL_WORDS.get(level_text)
    if level is None:
        errors.append(RowError(row, f"level {level_text!r} is not province, district or commune"))
    if len(errors) > before or level is None:
        return None
    return PointRow(row=row, code=code, name=name, level=level, parent_code=parent or None)


def parse_csv(data: bytes) -> list[PointRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected([RowError(1, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    errors: list[RowError] = []
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected([RowError(1, "the file is empty")]) from None
    columns = [HEADER_ALIASES.get(clean_line(h).lower()) for h in header]
    missing = {"code", "name", "level"} - set(c for c in columns if c)
    if missing:
        raise ImportRejected([RowError(1, f"header lacks column(s): {', '.join(sorted(missing))}")])
    rows: list[PointRow] = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(columns):
            errors.append(RowError(line, f"{len(values)} fields where the header has {len(columns)}"))
            continue
        raw = {col: val for col, val in zip(columns, values) if col}
        parsed = _validate(line, raw, errors)
        if parsed:
            rows.append(parsed)
    if errors:
        raise ImportRejected(errors)
    return rows


def _walk_yaml(items: Iterable[Any], parent: str | None, out: list[tuple[int, dict[str, Any]]]) -> None:
    for item in items:
        index = len(out) + 1
        if not isinstance(item, dict):
            out.append((index, {"__error__": f"expected a mapping with code, name, level; got {type(item).__name__}"}))
            continue
        entry = {HEADER_ALIASES.get(str(k).lower(), str(k)): v for k, v in item.items()}
        if parent and not entry.get("parent"):
            entry["parent"] = parent
        children = entry.pop("children", None)
        out.append((index, entry))
        if children:
            if isinstance(children, list):
                _walk_yaml(children, str(entry.get("code") or ""), out)
            else:
                out.append((len(out) + 1, {"__error__": "children must be a list"}))


def parse_yaml(data: bytes) -> list[PointRow]:
    try:
        doc = yaml.safe_load(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ImportRejected([RowError(1, f"not valid UTF-8 YAML: {exc}")]) from None
    if isinstance(doc, dict):
        doc = doc.get("points")
    if not isinstance(doc, list):
        raise ImportRejected([RowError(1, "expected a list of points (or a mapping with a 'points' list)")])
    entries: list[tuple[int, dict[str, Any]]] = []
    _walk_yaml(doc, None, entries)
    errors: list[RowError] = []
    rows: list[PointRow] = []
    for index, entry in entries:
        if "__error__" in entry:
            errors.append(RowError(index, entry["__error__"]))
            continue
        parsed = _validate(index, entry, errors)
        if parsed:
            rows.append(parsed)
    if errors:
        raise ImportRejected(errors)
    return rows


def parse_points_file(filename: str, data: bytes) -> list[PointRow]:
    """Rows from a ``.csv``, ``.yaml`` or ``.yml`` file."""
    lower = filename.lower()
    if lower.endswith((".yaml", ".yml")):
        return parse_yaml(data)
    if lower.endswith((".csv", ".txt", ".tsv")):
        return parse_csv(data)
    raise Invalid("bridge points can be imported from .csv, .yaml or .yml files", code="unsupported_format")
