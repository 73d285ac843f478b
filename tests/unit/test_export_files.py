"""Export cells and writers: formulas neutralised in CSV and XLSX, string cells, frozen headers, dates, requests."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from server.duty.shifts import Shift
from server.exports.cells import FORMULA_STARTS, neutralise, safe_text
from server.exports.columns import ROW_COLUMNS, TOTAL_COLUMNS, headers
from server.exports.request import ExportRequestError, parse_request
from server.exports.rows import DutyEntry, GuardInfo, Registry, SiteInfo, guard_rows, guard_totals, month_days
from server.exports.writers import CsvWriter, XlsxWriter

NASTY = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0"]
REGISTRY = Registry(
    {"north": SiteInfo("north", "=North", "Asia/Shanghai")},
    {"gate": "@gate"},
    {"day": Shift("day", "gate", "north", "-Day", time(8), time(16), tz="Asia/Shanghai")},
)


def guard(name: str, guard_id: str = "g-1") -> GuardInfo:
    return GuardInfo(guard_id, name, "110105********002X", "+Acme", ((None, None),))


def day_entry(guard_id: str = "g-1") -> DutyEntry:
    first_in, last_out = datetime(2026, 11, 2, 0, 7, tzinfo=UTC), datetime(2026, 11, 2, 8, 1, tzinfo=UTC)
    day = date(2026, 11, 2)
    return DutyEntry(guard_id, "north", "gate", "day", day, "late", first_in, last_out, 474, 7, 0, 0, "face", True)


def test_formula_starts_are_prefixed_with_a_quote_and_nothing_else_changes():
    for text in NASTY:
        assert neutralise(text) == "'" + text
    for text in ("李娜", "Zhang Wei", "1+1", "a=b", "'quoted", "", " =x"):
        assert neutralise(text) == text


@given(st.text(max_size=30))
def test_safe_text_never_starts_a_formula_and_holds_no_illegal_xml_characters(text):
    safe = safe_text(text)
    assert not safe.startswith(FORMULA_STARTS)
    assert not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in safe)


def test_stripping_control_characters_cannot_uncover_a_formula():
    assert safe_text("\x00=1+1") == "'=1+1"
    assert safe_text("\x07@x\x1f") == "'@x"


def write_xlsx(guards: list[GuardInfo], locale: str = "en") -> bytes:
    target = io.BytesIO()
    writer = XlsxWriter(target, locale)
    for g in guards:
        rows = guard_rows(g, [day_entry(g.guard_id)], month_days("2026-11"), REGISTRY)
        writer.add(rows, guard_totals(g, rows))
    writer.close()
    return target.getvalue()


def test_xlsx_keeps_every_nasty_text_as_a_string_cell_never_a_formula():
    names = NASTY + ["#N/A", "#DIV/0!"]
    data = write_xlsx([guard(name, f"g-{i}") for i, name in enumerate(names)])
    book = load_workbook(io.BytesIO(data))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s" and not cell.value.startswith(FORMULA_STARTS)
    sheet = book["Attendance"]
    # Without lxml a carriage return reads back as a line feed (XML line ends); the quote in front is what matters.
    found = {sheet.cell(r, 3).value.replace("\r", "\n") for r in range(2, sheet.max_row + 1)}
    assert found == {"'" + n.replace("\r", "\n") for n in NASTY} | {"#N/A", "#DIV/0!"}
    assert sheet["H3"].value == "'=North" and sheet["J3"].value == "'@gate" and sheet["F3"].value == "'+Acme"


def test_xlsx_has_frozen_headers_widths_dates_and_a_totals_sheet():
    book = load_workbook(io.BytesIO(write_xlsx([guard("李娜")], locale="zh")))
    assert book.sheetnames == ["Attendance", "Totals"]
    rows, totals = book["Attendance"], book["Totals"]
    assert rows.freeze_panes == "A2" and totals.freeze_panes == "A2"
    assert [c.value for c in rows[1]] == headers(ROW_COLUMNS, "zh") and rows["A1"].font.b
    assert [c.value for c in totals[1]] == headers(TOTAL_COLUMNS, "zh")
    assert rows.column_dimensions["C"].width == ROW_COLUMNS[2].width
    assert rows.max_row == 31 and totals.max_row == 2
    second = {column.key: cell for column, cell in zip(ROW_COLUMNS, rows[3], strict=False)}
    assert second["date"].value == datetime(2026, 11, 2) and second["date"].number_format == "yyyy-mm-dd"
    assert second["first_in"].value == datetime(2026, 11, 2, 8, 7)  # 00:07 UTC in Shanghai
    assert second["first_in"].number_format == "yyyy-mm-dd hh:mm"
    assert (second["status"].value, second["corrected"].value, second["check_in_method"].value) == (
        "迟到",
        "是",
        "人脸",
    )
    assert second["minutes_worked"].value == 474 and second["minutes_worked"].data_type == "n"
    total = [c.value for c in totals[2]]
    assert total[:4] == ["g-1", "李娜", "110105********002X", "'+Acme"] and total[4:8] == [1, 1, 1, 0]


def test_csv_rows_and_totals_parse_back_with_formulas_neutralised():
    rows_out, totals_out = io.StringIO(newline=""), io.StringIO(newline="")
    writer = CsvWriter(rows_out, totals_out, "en")
    g = guard('=HYPERLINK("http://evil","x")')
    rows = guard_rows(g, [day_entry()], month_days("2026-11"), REGISTRY)
    writer.add(rows, guard_totals(g, rows))
    writer.close()
    parsed = list(csv.DictReader(io.StringIO(rows_out.getvalue())))
    assert len(parsed) == 30 and list(parsed[0]) == headers(ROW_COLUMNS, "en")
    late = parsed[1]
    assert late["Name"] == '\'=HYPERLINK("http://evil","x")' and late["Employer"] == "'+Acme"
    assert late["Site"] == "'=North" and late["Post"] == "'@gate" and late["Shift"] == "'-Day"
    assert late["Date"] == "2026-11-02" and late["First in"] == "2026-11-02 08:07" and late["Status"] == "Late"
    assert late["Resident ID (masked)"] == "110105********002X" and late["Corrected"] == "yes"
    assert parsed[0]["Status"] == "No duty" and parsed[0]["First in"] == ""
    (total,) = csv.DictReader(io.StringIO(totals_out.getvalue()))
    assert total["Days late"] == "1" and total["Minutes worked"] == "474" and total["Name"].startswith("'=")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"month": "2026-13", "format": "xlsx"}, "month must look like 2026-11"),
        ({"month": "1999-12", "format": "xlsx"}, "not between 2000-01 and 2100-12"),
        ({"month": "2026-11", "format": "pdf"}, "format: Input should be 'xlsx' or 'csv'"),
        ({"month": "2026-11", "format": "csv", "site": "a", "guard": "b"}, "at most one of company, site and guard"),
        ({"month": "2026-11", "format": "csv", "sites": "a"}, "sites: Extra inputs are not permitted"),
        ({"format": "csv"}, "month: Field required"),
        ({"month": "2026-11", "format": "csv", "site": "../etc"}, "site: String should match pattern"),
        ([], "send a JSON object"),
    ],
)
def test_bad_requests_say_what_to_fix(body, message):
    with pytest.raises(ExportRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_request(body)


def test_a_good_request_names_its_file():
    request = parse_request({"month": "2026-11", "format": "csv", "site": " north "})
    assert (request.site, request.locale, request.file_name()) == ("north", "zh", "attendance-2026-11-site-north.csv")
    assert parse_request({"month": "2026-02", "format": "xlsx"}).file_name() == "attendance-2026-02-all.xlsx"
