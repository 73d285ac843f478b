"""Reading uploaded tables and typing their cells: encodings, XLSX values, formulas as text, limits, error layout."""

from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from guardpost.cli_import import ProgressBar, error_table
from server import tabular
from server.import_fields import Errors, Fields, RowError
from server.tabular import Row, TableError, read_table

SHANGHAI = ZoneInfo("Asia/Shanghai")


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def fields(errors: Errors | None = None, **cells: object) -> Fields:
    return Fields(Row(line=7, cells=cells), errors if errors is not None else Errors())


def test_utf8_with_bom_and_header_names_are_normalised() -> None:
    table = read_table("\ufeffGuard ID,Name\r\nG-1,张伟\r\n".encode("utf-8-sig"))
    assert table.source == "utf-8" and table.columns == ["guard_id", "name"]
    assert [(r.line, r.cells) for r in table.rows] == [(2, {"guard_id": "G-1", "name": "张伟"})]


def test_gb18030_is_the_fallback_for_chinese_excel_csv() -> None:
    table = read_table("guard_id,name\nG-1,张伟\n".encode("gb18030"))
    assert table.source == "gb18030" and table.rows[0].cells["name"] == "张伟"


def test_lines_are_where_each_record_starts_blank_lines_skipped() -> None:
    table = read_table(b'guard_id,name\n\nG-1,"two\nlines"\nG-2,x,extra\n')
    assert [(r.line, r.cells["guard_id"], r.extra_cells) for r in table.rows] == [(3, "G-1", 0), (5, "G-2", 1)]


def test_unnamed_columns_are_skipped_and_values_under_them_counted() -> None:
    table = read_table(b",guard_id,,name\n,G-1,,A\nx,G-2,y,B\n")
    assert table.columns == ["guard_id", "name"]
    assert [(r.cells, r.extra_cells) for r in table.rows] == [
        ({"guard_id": "G-1", "name": "A"}, 0),
        ({"guard_id": "G-2", "name": "B"}, 2),
    ]


def test_xlsx_keeps_types_and_gives_formulas_as_text() -> None:
    data = xlsx([["guard_id", "name", "born", None], ["G-1", '=A2&"x"', datetime(1990, 1, 2), None], [], [7, "李娜"]])
    table = read_table(data, "guards.xlsx")
    assert table.source == "xlsx" and table.columns == ["guard_id", "name", "born"]
    assert [r.line for r in table.rows] == [2, 4]
    assert table.rows[0].cells == {"guard_id": "G-1", "name": '=A2&"x"', "born": datetime(1990, 1, 2)}
    assert table.rows[1].cells["guard_id"] == 7


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "", "the file is empty"),
        (b"\xd0\xcf\x11\xe0rest", "old.xls", r"old Excel \.xls files cannot be read"),
        (b"not a zip", "guards.xlsx", r"is not an \.xlsx workbook"),
        (b"PK\x03\x04broken", "", "not a readable .xlsx workbook"),
        (b"a,b,a\n1,2,3\n", "", r"names column\(s\) a more than once"),
        ("\ufeff\ufeff,\n1\n".encode(), "", "the header row names no columns"),
        (b"\xff\xfe\x00", "", "neither UTF-8 nor GB18030"),
    ],
)
def test_unreadable_files_say_why(data: bytes, name: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        read_table(data, name)


def test_size_and_row_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "MAX_ROWS", 3)
    assert len(read_table(b"a\n1\n2\n\n3\n").rows) == 3
    with pytest.raises(TableError, match="more than 3 rows; split it"):
        read_table(b"a\n1\n2\n3\n4\n")
    with pytest.raises(TableError, match="more than 3 rows"):
        read_table(xlsx([["a"], [1], [2], [3], [4]]))
    monkeypatch.setattr(tabular, "MAX_BYTES", 10)
    with pytest.raises(TableError, match="at most 0 MB can be imported"):
        read_table(b"a\n12345678901\n")


def test_text_fields_refuse_formulas_and_overlong_values() -> None:
    errors = Errors()
    assert fields(errors, name=" 张伟 ").text("name") == "张伟"
    assert fields(errors, name=1001.0).text("name") == "1001"
    assert fields(errors, name=' =cmd|"/c calc"!A1').text("name") is None
    assert fields(errors, name="@SUM(A1)").text("name") is None
    assert fields(errors, name="x" * 201).text("name") is None
    assert fields(errors, name=None).text("name", required=True) is None
    assert fields(errors, name=123456789012345).text("name") == "123456789012345"
    assert fields(errors, name=1.2345678901234567e17).text("name") is None  # Excel already rounded it
    assert [e.message.split(";")[0] for e in errors.report()] == [
        "looks like a spreadsheet formula",
        "looks like a spreadsheet formula",
        "is 201 characters long",
        "is required",
        "is stored as a number in the sheet, which keeps only 15 digits",
    ]


def test_dates_yes_no_and_id_lists() -> None:
    errors = Errors()
    for raw in ("2025-03-01", "2025/3/1", "2025年3月1日", "20250301", date(2025, 3, 1), datetime(2025, 3, 1, 9)):
        assert fields(errors, d=raw).date("d") == date(2025, 3, 1)
    assert fields(errors, d="2025-02-30").date("d") is None
    assert [fields(errors, c=v).yes_no("c") for v in ("yes", "Y", "是", True, "", None, "否", "0")] == [True] * 4 + [
        False
    ] * 4
    assert fields(errors, s="S-1; S-2；S-1;").ident_list("s") == ["S-1", "S-2"]
    assert [e.message for e in errors.report()] == ["'2025-02-30' is not a date: day is out of range for month"]


def test_moments_are_site_local_unless_they_carry_an_offset() -> None:
    f = fields(a="2025-03-01", b="2025-03-01 08:30", c="2025-03-01T08:30:00+00:00", d=datetime(2025, 3, 1, 8, 30))
    assert f.moment("a", SHANGHAI) == datetime(2025, 2, 28, 16, 0)
    assert f.moment("b", SHANGHAI) == datetime(2025, 3, 1, 0, 30)
    assert f.moment("c", SHANGHAI) == datetime(2025, 3, 1, 8, 30)
    assert f.moment("d", SHANGHAI) == datetime(2025, 3, 1, 0, 30)
    assert f.moment("missing", SHANGHAI) is None and f.ok
    assert fields(e="soon").moment("e", SHANGHAI) is None


def test_errors_are_capped_and_ordered_by_line_then_header_column() -> None:
    errors = Errors()
    errors.add(3, "name", "b")
    errors.add(3, "guard_id", "a")
    errors.add(2, "", "whole row")
    assert [(e.line, e.column) for e in errors.report(["guard_id", "name"])] == [(2, ""), (3, "guard_id"), (3, "name")]
    many = Errors()
    for line in range(1005):
        many.add(line, "x", "bad")
    report = many.report()
    assert len(report) == 1001 and report[-1].message.startswith("5 more problem(s) not listed")


def test_error_table_aligns_chinese_text() -> None:
    table = error_table([RowError(12, "name", "'是的' is neither yes nor no"), RowError(0, "", "whole file")])
    assert table.splitlines() == [
        "line  column  message",
        "12    name    '是的' is neither yes nor no",
        "              whole file",
    ]


def test_progress_bar_redraws_only_on_change_and_ends_the_line() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=10, enabled=True)
    for done in range(1, 401):
        bar(done, 400)
    bar.finish()
    text = out.getvalue()
    assert text.count("\r") == 101 and text.endswith("\r[##########] 100% 400/400\n")
    silent = io.StringIO()
    ProgressBar(silent)(1, 2)  # not a terminal
    assert silent.getvalue() == ""


def test_values_in_unnamed_columns_are_a_row_error() -> None:
    errors = Errors()
    assert not Fields(Row(line=4, cells={}, extra_cells=2), errors).ok
    assert errors.report() == [
        RowError(4, "", "2 value(s) in columns the header does not name; remove them or name the column")
    ]
