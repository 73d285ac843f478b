"""Typed fields from imported cells (text, ids, dates, times, yes/no); each problem is noted by line and column."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from protocol.topics import check_id
from server.tabular import Cell, Row

MAX_ERRORS = 1000
TEXT_HINT = "format the column as Text and enter the value again"
MAX_CELL_CHARS = 1000
# A spreadsheet would run these (or a CSV opened in one later); they are never values here.
FORMULA_PREFIXES = ("=", "+", "@")

_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_YES = {"yes", "y", "true", "1", "是", "同意", "有"}
_NO = {"no", "n", "false", "0", "否", "不同意", "无", ""}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str


class Errors:
    """The error report: every problem up to MAX_ERRORS, then a count of the rest."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.dropped = 0

    def add(self, line: int, column: str, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(line, column, message))
        else:
            self.dropped += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self, columns: Sequence[str] = ()) -> list[RowError]:
        """By line, and within a line in the order of ``columns`` (the file's header)."""
        order = {name: i for i, name in enumerate(columns)}
        items = sorted(self.items, key=lambda e: (e.line, order.get(e.column, -1 if not e.column else len(order))))
        if self.dropped:
            items.append(RowError(0, "", f"{self.dropped} more problem(s) not listed; fix these and import again"))
        return items


class Fields:
    """Reads one row's cells as typed values; a bad cell is recorded and read as None."""

    def __init__(self, row: Row, errors: Errors):
        self.row = row
        self.errors = errors
        self.ok = True
        if row.extra_cells:
            self.fail(
                "", f"{row.extra_cells} value(s) in columns the header does not name; remove them or name the column"
            )

    def fail(self, column: str, message: str) -> None:
        self.ok = False
        self.errors.add(self.row.line, column, message)

    def raw(self, column: str) -> Cell:
        return self.row.cells.get(column)

    def text(self, column: str, *, required: bool = False, max_chars: int = 200) -> str | None:
        value = self.raw(column)
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1e15:
            # Excel keeps 15 significant digits: a longer number typed into a number cell has lost its last ones.
            self.fail(column, f"is stored as a number in the sheet, which keeps only 15 digits; {TEXT_HINT}")
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        text = "" if value is None else str(value).strip()
        if text.startswith(FORMULA_PREFIXES):
            self.fail(column, "looks like a spreadsheet formula; formulas are not evaluated, enter the value itself")
            return None
        if not text:
            if required:
                self.fail(column, "is required")
            return None
        if len(text) > min(max_chars, MAX_CELL_CHARS):
            self.fail(column, f"is {len(text)} characters long; at most {max_chars} are allowed")
            return None
        return text

    def ident(self, column: str, *, required: bool = False) -> str | None:
        text = self.text(column, required=required, max_chars=64)
        if text is None:
            return None
        try:
            return check_id(text, column)
        except ValueError as exc:
            self.fail(column, str(exc))
            return None

    def ident_list(self, column: str) -> list[str]:
        text = self.text(column, max_chars=MAX_CELL_CHARS) or ""
        ids: list[str] = []
        for part in re.split(r"[;；]", text):
            part = part.strip()
            if not part or part in ids:
                continue
            try:
                ids.append(check_id(part, column.rstrip("s")))
            except ValueError as exc:
                self.fail(column, f"{exc} (separate several with ';')")
        return ids

    def date(self, column: str) -> date | None:
        value = self.raw(column)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = self.text(column, max_chars=40)
        if text is None:
            return None
        match = _DATE.match(text) or _COMPACT_DATE.match(text)
        try:
            if match is None:
                raise ValueError("expected a date like 2025-03-01")
            return date(*(int(part) for part in match.groups()))
        except ValueError as exc:
            self.fail(column, f"{text!r} is not a date: {exc}")
            return None

    def moment(self, column: str, tz: ZoneInfo, *, required: bool = False) -> datetime | None:
        """A date (local midnight) or date and time in the site's zone, or with an offset; naive UTC."""
        value = self.raw(column)
        if isinstance(value, datetime):
            local = value
        elif isinstance(value, date):
            local = datetime.combine(value, time())
        else:
            text = self.text(column, required=required, max_chars=40)
            if text is None:
                return None
            try:
                local = _parse_moment(text)
            except ValueError:
                self.fail(column, f"{text!r} is not a date or time; write 2025-03-01 or 2025-03-01 08:00")
                return None
        if local.tzinfo is None:
            local = local.replace(tzinfo=tz)
        return local.astimezone(UTC).replace(tzinfo=None)

    def yes_no(self, column: str) -> bool:
        value = self.raw(column)
        if isinstance(value, bool):
            return value
        text = (self.text(column, max_chars=10) or "").lower()
        if text in _YES:
            return True
        if text not in _NO:
            self.fail(column, f"{text!r} is neither yes nor no")
        return False


def _parse_moment(text: str) -> datetime:
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match is not None:
        return datetime(*(int(part) for part in match.groups()))
    return datetime.fromisoformat(text.replace("/", "-"))
