"""Pure facts of each sealed kind: which fields are immutable, which month a record belongs to, its name in reports.

Events: everything the terminal signed (the payload with its ``sig``, and the columns ingest took from it)
plus the server's ``received_at``. Not ``corrected_at`` / ``clock_status``: clock correction fills them in
later, legitimately (server/clock_correction.py). Corrections: who, when, why, old and new value, and the
duty record they change (guard, shift, date, field).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.audit.chain import iso

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

EVENT_COLUMNS = (
    "event_id",
    "device_id",
    "site_id",
    "seq",
    "type",
    "method",
    "guard_id",
    "captured_at",
    "clock_synced",
    "boot_id",
    "monotonic_s",
    "received_at",
    "distance",
    "margin",
    "liveness",
    "payload",
)
CORRECTION_COLUMNS = (
    "guard_id",
    "site_id",
    "shift_id",
    "date",
    "field",
    "old_value",
    "new_value",
    "reason",
    "corrected_by",
    "corrected_at",
)


def parse_month(text: str) -> str:
    if not MONTH.match(text or ""):
        raise ValueError(f"month {text!r} must look like 2026-04")
    return text


def month_range(month: str) -> tuple[date, date]:
    """First day of the month and first day of the next one."""
    m = MONTH.match(month)
    if m is None:
        raise ValueError(f"month {month!r} must look like 2026-04")
    year, number = int(m.group(1)), int(m.group(2))
    return date(year, number, 1), date(year + number // 12, number % 12 + 1, 1)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def event_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _value(row[name]) for name in EVENT_COLUMNS}


def event_key(row: Mapping[str, Any]) -> str:
    return str(row["event_id"])


def event_label(ref_key: str, ref_id: int) -> str:
    return f"event {ref_key} (id {ref_id})"


def event_month(row: Mapping[str, Any], zone: ZoneInfo) -> str:
    """The month of the capture's local date at the site: the date duty logs and reports use."""
    return f"{row['captured_at'].replace(tzinfo=UTC).astimezone(zone):%Y-%m}"


def correction_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _value(row[name]) for name in CORRECTION_COLUMNS}


def correction_key(row: Mapping[str, Any]) -> str:
    return f"{row['guard_id']}/{row['shift_id'] or '-'}/{row['date']}/{row['field']}"


def correction_label(ref_key: str, ref_id: int) -> str:
    return f"duty correction {ref_id} ({ref_key.replace('/', ', ')})"


def correction_month(row: Mapping[str, Any], _zone: ZoneInfo) -> str:
    """The month of the duty day corrected, wherever and whenever the correction was made."""
    return f"{row['date']:%Y-%m}"


# Review decisions: a supervisor's confirm or reject of a borderline match (server/review.py).
REVIEW_COLUMNS = (
    "finding_id",
    "event_id",
    "site_id",
    "device_id",
    "guard_id",
    "decision",
    "reason",
    "decided_by",
    "decided_at",
)


def review_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _value(row[name]) for name in REVIEW_COLUMNS}


def review_key(row: Mapping[str, Any]) -> str:
    return str(row["event_id"])


def review_label(ref_key: str, ref_id: int) -> str:
    return f"review decision {ref_id} (event {ref_key})"


def review_month(row: Mapping[str, Any], zone: ZoneInfo) -> str:
    """The month of the decision's local date at the site: when the duty log changed."""
    return f"{row['decided_at'].replace(tzinfo=UTC).astimezone(zone):%Y-%m}"
