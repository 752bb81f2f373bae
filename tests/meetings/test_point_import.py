"""Reading bridge-point files: CSV dialects, YAML nesting, and row-numbered errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetings.errors import Invalid
from meetings.models import PointLevel
from meetings.point_import import (
    ImportRejected,
    detect_format,
    parse_csv,
    parse_level,
    parse_points_file,
    parse_yaml,
    read_csv,
    read_yaml,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def rejected_rows(exc: ImportRejected) -> list[int]:
    return [e["row"] for e in exc.details["errors"]]


def test_sample_csv_reads_every_row() -> None:
    rows = parse_points_file("points_sample.csv", (DATA / "points_sample.csv").read_bytes())
    assert len(rows) == 15
    assert rows[0].code == "92" and rows[0].level is PointLevel.PROVINCE and rows[0].parent_code is None
    assert rows[1].name == "UBND quận Ninh Kiều" and rows[1].parent_code == "92"
    assert [r.row for r in rows[:3]] == [2, 3, 4]  # the header is line 1


def test_sample_yaml_nested_children_get_their_parent() -> None:
    rows = parse_points_file("points_sample.yaml", (DATA / "points_sample.yaml").read_bytes())
    assert len(rows) == 13
    by_code = {r.code: r for r in rows}
    assert by_code["22"].parent_code is None
    assert by_code["193"].parent_code == "22"
    assert by_code["06661"].parent_code == "193" and by_code["06661"].level is PointLevel.COMMUNE
    assert by_code["07252"].name == "UBND xã Thanh Lân"


def test_csv_semicolon_bom_and_vietnamese_headers() -> None:
    text = ("Mã định danh;Tên điểm cầu;Cấp;Mã cấp trên\r\n"
            "08;UBND tỉnh Tuyên Quang;Tỉnh;\r\n"
            "070;UBND thành phố Tuyên Quang;Huyện;08\r\n"
            "02212;UBND phường Phan Thiết;Phường;070\r\n")
    rows = parse_csv(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert [(r.code, r.level, r.parent_code) for r in rows] == [
        ("08", PointLevel.PROVINCE, None),
        ("070", PointLevel.DISTRICT, "08"),
        ("02212", PointLevel.COMMUNE, "070"),
    ]
    assert rows[0].name == "UBND tỉnh Tuyên Quang"


def test_csv_tab_separated_and_names_with_commas() -> None:
    rows = parse_csv("code\tname\tlevel\tparent\n08\tUBND tỉnh, Tuyên Quang\tprovince\t\n".encode())
    assert rows[0].name == "UBND tỉnh, Tuyên Quang"


def test_csv_quoted_field_with_semicolon_in_comma_file() -> None:
    rows = parse_csv('code,name,level,parent\n08,"Tỉnh; Tuyên Quang",province,\n'.encode())
    assert rows[0].name == "Tỉnh; Tuyên Quang"


def test_csv_decomposed_unicode_is_normalised() -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "UBND xã Tân Trào")
    rows = parse_csv(f"code,name,level,parent\n02530,{nfd},commune,076\n".encode())
    assert rows[0].name == unicodedata.normalize("NFC", "UBND xã Tân Trào")


def test_csv_bad_rows_report_line_numbers_and_every_problem() -> None:
    text = ("code,name,level,parent\n"
            "08,UBND tỉnh Tuyên Quang,province,\n"
            ",Không có mã,district,08\n"  # line 3: empty code
            "070,,district,08\n"  # line 4: empty name
            "\n"  # blank lines are skipped but counted
            "075,UBND huyện Yên Sơn,thôn,08\n"  # line 6: bad level
            "bad code!,Tên,commune,075\n"  # line 7: bad code
            "076,UBND huyện Sơn Dương,district,08,extra\n")  # line 8: too many fields
    with pytest.raises(ImportRejected) as info:
        parse_csv(text.encode())
    exc = info.value
    assert exc.code == "import_rejected"
    assert rejected_rows(exc) == [3, 4, 6, 7, 8]
    messages = [e["message"] for e in exc.details["errors"]]
    assert "code is empty" in messages[0]
    assert "name is empty" in messages[1]
    assert "'thôn'" in messages[2]
    assert "bad code!" in messages[3]
    assert "fields" in messages[4]


def test_csv_multiline_quoted_field_keeps_line_numbers_right() -> None:
    text = 'code,name,level,parent\n08,"UBND tỉnh\nTuyên Quang",province,\n070,,district,08\n'
    parsed = read_csv(text.encode())
    assert parsed.rows[0].name == "UBND tỉnh Tuyên Quang"  # newlines in a name become spaces
    assert [e.row for e in parsed.errors] == [4]


def test_csv_missing_columns_and_empty_file() -> None:
    with pytest.raises(ImportRejected) as info:
        parse_csv(b"code,name\n08,X\n")
    assert "level" in info.value.message and rejected_rows(info.value) == [1]
    with pytest.raises(ImportRejected) as info:
        parse_csv(b"")
    assert "empty" in info.value.message


def test_csv_not_utf8_names_the_line() -> None:
    data = "code,name,level,parent\n08,UBND tỉnh Tuyên Quang,province,\n".encode("utf-16-le")
    with pytest.raises(ImportRejected):
        parse_csv(data)
    latin = b"code,name,level,parent\n08,Tuy\xean Quang,province,\n"
    with pytest.raises(ImportRejected) as info:
        parse_csv(latin)
    assert rejected_rows(info.value) == [2]
    assert "UTF-8" in info.value.message


def test_level_words() -> None:
    assert parse_level("Tỉnh") is PointLevel.PROVINCE
    assert parse_level("HUYỆN") is PointLevel.DISTRICT
    assert parse_level("quận") is PointLevel.DISTRICT
    assert parse_level("Thị trấn") is PointLevel.COMMUNE
    assert parse_level("xa") is PointLevel.COMMUNE
    ambiguous = parse_level("Thành phố")
    assert isinstance(ambiguous, str) and not isinstance(ambiguous, PointLevel) and "ambiguous" in ambiguous


def test_yaml_row_numbers_are_lines() -> None:
    text = ("- code: '08'\n"
            "  name: UBND tỉnh Tuyên Quang\n"
            "  level: province\n"
            "  children:\n"
            "    - {code: '070', name: '', level: district}\n"  # line 5
            "    - code: '075'\n"  # line 6
            "      name: UBND huyện Yên Sơn\n"
            "      level: làng\n")
    with pytest.raises(ImportRejected) as info:
        parse_yaml(text.encode())
    assert rejected_rows(info.value) == [5, 6]


def test_yaml_keeps_codes_as_written() -> None:
    # Unquoted 010 is octal 8 to a YAML 1.1 loader; 08 and 1e3 would also change.
    rows = parse_yaml(b"- {code: 010, name: A, level: province}\n- {code: 1e3, name: B, level: district, parent: 010}\n")
    assert [r.code for r in rows] == ["010", "1e3"]
    assert rows[1].parent_code == "010"


def test_yaml_points_key_and_explicit_parent() -> None:
    rows = parse_yaml("points:\n  - {code: '070', name: TP Tuyên Quang, level: huyện, parent: '08'}\n".encode())
    assert rows[0].parent_code == "08"


@pytest.mark.parametrize("text, fragment", [
    ("just text", "list of points"),
    ("{other: 1}", "list of points"),
    ("- [1, 2]\n", "mapping"),
    ("- {code: A, name: B, level: province, children: {x: 1}}\n", "children must be a list"),
    ("- {code: [A], name: B, level: province}\n", "plain text"),
    ("- {code: A, name: B\n", "not valid YAML"),
])
def test_yaml_shape_errors(text: str, fragment: str) -> None:
    with pytest.raises(ImportRejected) as info:
        parse_yaml(text.encode())
    assert fragment in info.value.message


def test_yaml_recursive_alias_is_bounded() -> None:
    text = b"points: &p\n  - {code: A, name: n, level: province, children: *p}\n"
    parsed = read_yaml(text)
    assert parsed.errors  # nested too deep / duplicates, but it returns


def test_detect_format() -> None:
    assert detect_format("a.YAML") == "yaml"
    assert detect_format("a.yml") == "yaml"
    assert detect_format("a.csv") == "csv"
    assert detect_format("", b"code;name;level\n") == "csv"
    assert detect_format("", b"- code: 1\n") == "yaml"
    assert detect_format("", b"", "application/yaml") == "yaml"
    with pytest.raises(Invalid) as info:
        detect_format("points.xlsx")
    assert info.value.code == "unsupported_format"


NAME = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd", "Zs"), whitelist_characters="ăâđêôơưĂÂĐÊÔƠƯ,;\"'-"),
    min_size=1, max_size=60,
).filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(names=st.lists(NAME, min_size=1, max_size=8), delimiter=st.sampled_from([",", ";", "\t"]))
def test_csv_round_trip_any_names(names: list[str], delimiter: str) -> None:
    """Whatever names a spreadsheet writes (quotes, separators, Vietnamese letters) read back."""
    from meetings.text import clean_line

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["code", "name", "level", "parent"])
    writer.writerow(["P", "Tỉnh", "province", ""])
    for i, name in enumerate(names):
        writer.writerow([f"D{i}", name, "district", "P"])
    rows = parse_csv(out.getvalue().encode("utf-8"))
    assert [r.name for r in rows[1:]] == [clean_line(n) for n in names]


def test_yaml_lone_surrogate_escape_is_a_row_error() -> None:
    # "\ud800" is a valid YAML escape but not storable text (UTF-8 cannot encode it)
    parsed = read_yaml('- {code: "08", name: "UBND \\ud800", level: tỉnh}\n'.encode())
    assert [e.row for e in parsed.errors] == [1] and "not valid Unicode" in parsed.errors[0].message
