"""XLSX (openpyxl write-only, streamed) and CSV writers for attendance rows and per-guard totals."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, datetime
from typing import IO, Protocol

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from server.exports.cells import safe_text
from server.exports.columns import ROW_COLUMNS, TOTAL_COLUMNS, Column, Value, headers, row_values, total_values
from server.exports.rows import AttendanceRow, GuardTotals

ROWS_SHEET = "Attendance"
TOTALS_SHEET = "Totals"
DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "yyyy-mm-dd hh:mm"
CSV_TIME = "%Y-%m-%d %H:%M"


class ExportWriter(Protocol):
    def add(self, rows: Sequence[AttendanceRow], totals: GuardTotals) -> None: ...

    def close(self) -> None: ...


class _Sheet:
    """A write-only sheet: frozen, bold header row, column widths, and one reusable styled cell per date column."""

    def __init__(self, workbook: Workbook, title: str, columns: tuple[Column, ...], locale: str):
        self.sheet = workbook.create_sheet(title)
        self.columns = columns
        for index, column in enumerate(columns, 1):
            self.sheet.column_dimensions[get_column_letter(index)].width = column.width
        self.sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        self.sheet.append([self._header(text, bold) for text in headers(columns, locale)])
        self.count = 1
        # Styled cells are slow to build; the writer emits each row before the next is made, so reusing is safe.
        self.styled = {
            index: self._styled(DATE_FORMAT if column.kind == "date" else TIME_FORMAT)
            for index, column in enumerate(columns)
            if column.kind in ("date", "time")
        }

    def _header(self, text: str, font: Font) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, value=safe_text(text))
        cell.font = font
        return cell

    def _styled(self, number_format: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
        cell.number_format = number_format
        return cell

    def _text(self, value: str) -> str | WriteOnlyCell:
        text = safe_text(value)
        if not text.startswith("'") and text not in ERROR_CODES:
            return text
        # Neutralised text, or text like "#N/A" openpyxl would store as an error: always a string cell.
        cell = WriteOnlyCell(self.sheet, value=text)
        cell.data_type = "s"
        return cell

    def append(self, values: list[Value]) -> None:
        out: list[object] = []
        for index, value in enumerate(values):
            if value == "":
                out.append(None)  # no cell at all, rather than an empty string cell
            elif isinstance(value, str):
                out.append(self._text(value))
            elif isinstance(value, date) and index in self.styled:
                cell = self.styled[index]
                cell.value = value
                out.append(cell)
            else:
                out.append(value)
        self.sheet.append(out)
        self.count += 1

    def finish(self) -> None:
        self.sheet.auto_filter.ref = f"A1:{get_column_letter(len(self.columns))}{self.count}"


class XlsxWriter:
    """Two sheets, "Attendance" (a row per guard and day) and "Totals" (a row per guard), streamed to ``target``."""

    def __init__(self, target: str | IO[bytes], locale: str, title: str = "Attendance"):
        self.target = target
        self.workbook = Workbook(write_only=True)
        self.workbook.properties.title = safe_text(title)
        self.workbook.properties.creator = "GuardPost"
        self.rows = _Sheet(self.workbook, ROWS_SHEET, ROW_COLUMNS, locale)
        self.totals = _Sheet(self.workbook, TOTALS_SHEET, TOTAL_COLUMNS, locale)
        self.locale = locale

    def add(self, rows: Sequence[AttendanceRow], totals: GuardTotals) -> None:
        for row in rows:
            self.rows.append(row_values(row, self.locale))
        self.totals.append(total_values(totals))

    def close(self) -> None:
        self.rows.finish()
        self.totals.finish()
        self.workbook.save(self.target)


def csv_cell(value: Value) -> str | int:
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, datetime):
        return value.strftime(CSV_TIME)
    if isinstance(value, date):
        return value.isoformat()
    return value


class CsvWriter:
    """Rows and totals as two CSV streams (the caller opens them UTF-8 with a BOM, for Excel on Chinese Windows)."""

    def __init__(self, rows: IO[str], totals: IO[str], locale: str):
        self.rows = csv.writer(rows)
        self.totals = csv.writer(totals)
        self.locale = locale
        self.rows.writerow([csv_cell(text) for text in headers(ROW_COLUMNS, locale)])
        self.totals.writerow([csv_cell(text) for text in headers(TOTAL_COLUMNS, locale)])

    def add(self, rows: Sequence[AttendanceRow], totals: GuardTotals) -> None:
        self.rows.writerows([csv_cell(v) for v in row_values(row, self.locale)] for row in rows)
        self.totals.writerow([csv_cell(v) for v in total_values(totals)])

    def close(self) -> None:
        pass  # the caller owns the streams
