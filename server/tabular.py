"""Uploaded tables: CSV (UTF-8 with or without BOM, else GB18030) or XLSX, bounded, each cell kept as it was typed."""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 64
# Bounds what openpyxl inflates: a 20 MB upload can hold gigabytes of compressed XML.
MAX_XLSX_UNCOMPRESSED = 400 * 1024 * 1024

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls (and other Office 97-2003 files)

Cell = str | int | float | bool | date | datetime | None


class TableError(ValueError):
    """The file as a whole cannot be read as a table; ``line`` is where, when known (0 otherwise)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Row:
    """One data row: cells by (normalised) column name; ``line`` is the file line or sheet row it starts on."""

    line: int
    cells: dict[str, Cell]
    extra_cells: int = 0  # non-empty cells in columns the header does not name


@dataclass(frozen=True)
class Table:
    columns: list[str]
    header_line: int
    rows: list[Row]
    source: str  # "utf-8", "gb18030" or "xlsx": how the file was read


def read_table_file(path: Path) -> Table:
    """Read a CSV or XLSX file, refusing an oversized one before reading it."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise TableError(f"{path.name} is {size / 2**20:.1f} MB; at most {MAX_BYTES // 2**20} MB can be imported")
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"cannot read {path}: {exc.strerror}") from None
    return read_table(data, path.name)


def read_table(data: bytes, filename: str = "") -> Table:
    """Parse uploaded bytes; the format comes from the content, the file name only sharpens messages."""
    if len(data) > MAX_BYTES:
        raise TableError(f"the file is {len(data) / 2**20:.1f} MB; at most {MAX_BYTES // 2**20} MB can be imported")
    if data.startswith(_OLE_MAGIC) or filename.lower().endswith(".xls"):
        raise TableError("old Excel .xls files cannot be read; save the sheet as .xlsx or as CSV (UTF-8)")
    if data.startswith(_ZIP_MAGIC):
        return _read_xlsx(data)
    if filename.lower().endswith(".xlsx"):
        raise TableError(f"{filename} is not an .xlsx workbook (it is not a zip archive); save it again from Excel")
    return _read_csv(data)


def normalise_header(value: Cell) -> str:
    return "" if value is None else str(value).strip().lstrip("\ufeff").lower().replace(" ", "_")


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Excel on Chinese Windows saves "CSV" in the ANSI code page, GBK, which GB18030 contains.
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise TableError("the file is neither UTF-8 nor GB18030 text; save it as CSV (UTF-8) or .xlsx") from None


def _read_csv(data: bytes) -> Table:
    text, encoding = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[Cell]]] = []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num  # a quoted cell may span several lines
            if _keep(records, start, list(record)):
                break
    except csv.Error as exc:
        raise TableError(f"line {reader.line_num}: not valid CSV: {exc}", reader.line_num) from None
    return _table(records, encoding)


def _keep(records: list[tuple[int, list[Cell]]], line: int, cells: list[Cell]) -> bool:
    """Collect a non-blank record; True once there are more than the header and MAX_ROWS rows (stop reading)."""
    if not _is_blank(cells):
        records.append((line, cells))
    return len(records) > MAX_ROWS + 1


def _read_xlsx(data: bytes) -> Table:
    # Imported here: only uploads in XLSX pay for loading openpyxl.
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    # zipfile reports some malformed archives through plain ValueError, EOFError or OSError.
    except (zipfile.BadZipFile, ValueError, IndexError, KeyError, OSError, EOFError) as exc:
        raise TableError(f"not a readable .xlsx workbook: {exc}") from None
    if inflated > MAX_XLSX_UNCOMPRESSED:
        raise TableError(f"the workbook unpacks to {inflated // 2**20} MB; at most {MAX_XLSX_UNCOMPRESSED // 2**20} MB")
    records: list[tuple[int, list[Cell]]] = []
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it drops (data validation, conditional formats);
            # only cell values are imported, so none of that matters here.
            warnings.simplefilter("ignore", UserWarning)
            # data_only=False: a formula cell yields its formula text, never a cached or computed value.
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
            try:
                sheet = workbook.worksheets[0]
                for number, values in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True), 1):
                    if _keep(records, number, [_xlsx_value(value) for value in values]):
                        break
            finally:
                workbook.close()
    except (KeyError, ValueError, OSError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        raise TableError(f"not a readable .xlsx workbook: {exc}") from None
    return _table(records, "xlsx")


def _xlsx_value(value: object) -> Cell:
    if value is None or isinstance(value, str | int | float | bool | date | datetime):
        return value  # type: ignore[return-value]
    # Array and data-table formulas come as objects holding the formula text.
    return str(getattr(value, "text", value))


def _is_blank(cells: list[Cell]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _table(content: list[tuple[int, list[Cell]]], source: str) -> Table:
    if not content:
        raise TableError("the file is empty: expected a header row naming the columns, then one row per record")
    header_line, header = content[0]
    columns = [normalise_header(value) for value in header]
    if len(columns) > MAX_COLUMNS and any(columns[MAX_COLUMNS:]):
        raise TableError(f"the header has more than {MAX_COLUMNS} columns", header_line)
    # Unnamed columns are skipped (a sheet may start at column B); values under them are reported per row.
    named = [(i, name) for i, name in enumerate(columns) if name]
    if not named:
        raise TableError("the header row names no columns", header_line)
    names = [name for _i, name in named]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise TableError(f"the header names column(s) {', '.join(duplicated)} more than once", header_line)
    data = content[1:]
    if len(data) > MAX_ROWS:
        raise TableError(f"the file has more than {MAX_ROWS} rows; split it into several files")
    used = {i for i, _name in named}
    rows = [
        Row(
            line=line,
            cells={name: (cells[i] if i < len(cells) else None) for i, name in named},
            extra_cells=sum(1 for i, cell in enumerate(cells) if i not in used and not _is_blank([cell])),
        )
        for line, cells in data
    ]
    return Table(columns=names, header_line=header_line, rows=rows, source=source)
