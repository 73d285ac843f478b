"""The kinds of records sealed into the audit chain, each bound to its table; adding one is a register() call.

A kind names its table, the columns its pure functions (server/audit/records.py) read, the column saying
when the server got the record, and an SQL filter that finds every row that may belong to a month.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Table, and_, select

from server.audit import records
from server.duty.tables import DutyCorrection
from server.models import Event, ReviewDecision

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Kind:
    name: str
    table: Table
    columns: tuple[str, ...]
    arrival: str  # when the server got the record (naive UTC); must be one of ``columns``
    site: str | None  # the column holding the site id
    facts: Callable[[Row], dict[str, Any]]
    key: Callable[[Row], str]
    label: Callable[[str, int], str]
    month: Callable[[Row, ZoneInfo], str]
    month_candidates: Callable[[str], ColumnElement[bool]]

    def select(self) -> Select:
        return select(self.table.c.id, *(self.table.c[name] for name in self.columns))


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.name in KINDS or kind.name.startswith("start"):
        raise ValueError(f"audit kind {kind.name!r} is already registered or reserved")
    KINDS[kind.name] = kind
    return kind


def _events_of(month: str) -> ColumnElement[bool]:
    return _local_month(Event.captured_at, month)


def _local_month(column, month: str) -> ColumnElement[bool]:
    first, following = records.month_range(month)
    # Local dates are at most 14 h from UTC: one day either side catches every site's month.
    start = datetime.combine(first, time()) - timedelta(days=1)
    end = datetime.combine(following, time()) + timedelta(days=1)
    return and_(column >= start, column < end)


def _corrections_of(month: str) -> ColumnElement[bool]:
    first, following = records.month_range(month)
    return and_(DutyCorrection.date >= first, DutyCorrection.date < following)


register(
    Kind(
        name="event",
        table=Event.__table__,
        columns=records.EVENT_COLUMNS,
        arrival="received_at",
        site="site_id",
        facts=records.event_facts,
        key=records.event_key,
        label=records.event_label,
        month=records.event_month,
        month_candidates=_events_of,
    )
)
register(
    Kind(
        name="correction",
        table=DutyCorrection.__table__,
        columns=records.CORRECTION_COLUMNS,
        arrival="corrected_at",
        site="site_id",
        facts=records.correction_facts,
        key=records.correction_key,
        label=records.correction_label,
        month=records.correction_month,
        month_candidates=_corrections_of,
    )
)
register(
    Kind(
        name="review",
        table=ReviewDecision.__table__,
        columns=records.REVIEW_COLUMNS,
        arrival="decided_at",
        site="site_id",
        facts=records.review_facts,
        key=records.review_key,
        label=records.review_label,
        month=records.review_month,
        month_candidates=lambda month: _local_month(ReviewDecision.decided_at, month),
    )
)
