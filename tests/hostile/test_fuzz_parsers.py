"""Hostile input: any bytes into the event parser, table reader and roster parsers end in a value or a clean error."""

from __future__ import annotations

import io
import json
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from protocol.events import ProtocolError, parse_event
from server.duty.rosters_csv import SHIFT_COLUMNS, parse_roster_csv, parse_shifts_csv
from server.tabular import TableError, read_table

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
EVENT_KEYS = ["schema", "event_id", "device_id", "site_id", "seq", "type", "method", "guard_id", "captured_at"]
EVENT_KEYS += ["clock_synced", "sig", "match", "card", "monotonic_s", "boot_id", "candidate_guard_id"]


def event_like() -> st.SearchStrategy[dict]:
    """Objects with the event's keys (and strangers) holding any JSON values: the parser's hard cases."""
    keys = st.sampled_from(EVENT_KEYS) | st.text(max_size=10)
    return st.dictionaries(keys, json_values, max_size=len(EVENT_KEYS) + 3).map(
        lambda d: {"schema": "guardpost.event.v1", **d} if d.get("schema") is None else d
    )


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes_parse_to_an_event_or_a_protocol_error(payload):
    try:
        parse_event(payload)
    except ProtocolError as exc:
        assert exc.args  # a reason is always given


@FUZZ
@given(event_like())
def test_event_shaped_json_parses_or_is_refused_cleanly(document):
    try:
        event, raw = parse_event(json.dumps(document))
    except ProtocolError:
        return
    assert raw == document and event.event_id


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(["", "guards.csv", "guards.xlsx", "old.xls"]))
def test_any_upload_reads_as_a_table_or_a_table_error(data, name):
    try:
        table = read_table(data, name)
    except TableError as exc:
        assert str(exc)
        return
    assert all(
        isinstance(cell, str | int | float | type(None)) or cell is not None for r in table.rows for cell in r.cells
    )


cells = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30).filter(lambda s: not any(ord(c) < 32 and c not in "\t\n\r" for c in s)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(cells, max_size=6), max_size=8))
def test_any_workbook_reads_as_a_table_or_a_table_error(rows):
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    try:
        read_table(out.getvalue(), "x.xlsx")
    except TableError as exc:
        assert str(exc)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.from_regex(r"[A-Za-z0-9_./\[\]-]{1,20}", fullmatch=True), st.binary(max_size=300), max_size=4)
)
def test_a_zip_that_is_no_workbook_is_a_table_error(members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    try:
        read_table(out.getvalue(), "x.xlsx")
    except TableError as exc:
        assert str(exc)


csv_text = st.lists(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), max_size=9).map(",".join),
    max_size=8,
).map("\n".join)
SHIFT_HEADER = ",".join(SHIFT_COLUMNS)


@FUZZ
@given(csv_text, st.booleans())
def test_shift_and_roster_files_parse_or_name_the_bad_line(body, with_header):
    text = (SHIFT_HEADER + "\n" + body) if with_header else body
    shifts, errors = parse_shifts_csv(text)
    assert all(isinstance(line, int) and message for line, message in errors)
    roster, roster_errors = parse_roster_csv("date,shift_id,guard_id\n" + body, shifts)
    assert all(isinstance(line, int) and message for line, message in roster_errors)
