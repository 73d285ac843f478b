"""Insert many rows at once: COPY on PostgreSQL, one multi-row INSERT on SQLite, executemany elsewhere.

Rows are NamedTuples whose fields are column names. Values for JSON columns are JSON text, already
serialised (ingest has the payload as received).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import JSON, Connection, Dialect, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

SQLITE_MAX_VARIABLES = 32766  # SQLite 3.32 and later
_SAMPLES = (datetime(2026, 2, 3, 4, 5, 6, 7), datetime(987, 12, 31, 23, 59, 59))


def insert_rows(session: Session, table: Table, rows: Sequence[NamedTuple]) -> None:
    """Insert ``rows`` (NamedTuples of one type, fields named as columns) within the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    columns = rows[0]._fields
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
    elif connection.dialect.name == "sqlite":
        _multi_values(connection, table, columns, rows)
    else:
        as_json = _json_columns(table, columns)
        connection.execute(
            insert(table),
            [{k: json.loads(v) if k in as_json else v for k, v in zip(columns, r, strict=True)} for r in rows],
        )


def _json_columns(table: Table, columns: Sequence[str]) -> set[str]:
    return {name for name in columns if isinstance(table.c[name].type, JSON)}


def _multi_values(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[NamedTuple]) -> None:
    # executemany steps the statement once per row and drops the GIL each time, which then has to be won
    # back from paho's busy thread; one INSERT with many VALUES steps once.
    dialect = connection.dialect
    processed = _processors(table, tuple(columns), dialect)
    quote = dialect.identifier_preparer
    head = f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(name) for name in columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    per_statement = max(1, SQLITE_MAX_VARIABLES // len(columns))
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        params: list[Any] = []
        for row in part:
            values = list(row)
            for i, process in processed:
                values[i] = process(values[i])
            params += values
        connection.exec_driver_sql(head + ", ".join([one] * len(part)), tuple(params))


@lru_cache(maxsize=64)
def _processors(table: Table, columns: tuple[str, ...], dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, bind processor) of the columns whose values need one; JSON values are text already."""
    as_json = _json_columns(table, columns)
    return [
        (i, process)
        for i, name in enumerate(columns)
        if name not in as_json
        and (process := _fast(table.c[name].type.dialect_impl(dialect).bind_processor(dialect))) is not None
    ]


def _fast(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """SQLAlchemy's processor, or isoformat where it writes the same text (naive datetimes), ~6x faster."""
    if process is None:
        return None
    try:
        same = all(process(moment) == _iso(moment) for moment in _SAMPLES)
    except (TypeError, ValueError, AttributeError):
        same = False
    if not same:
        return process

    def fast(value: Any) -> Any:
        return _iso(value) if type(value) is datetime and value.tzinfo is None else process(value)

    return fast


def _iso(value: Any) -> str:
    return value.isoformat(" ", "microseconds")


def _copy(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[NamedTuple]) -> None:
    # psycopg's executemany sends one prepared statement per row, ~40 us of Python each; COPY streams them,
    # in binary: ~3 us less per row on each side than text (no number or time formatting and parsing).
    quote = connection.dialect.identifier_preparer
    names = f"{quote.format_table(table)} ({', '.join(quote.quote(name) for name in columns)})"
    statement = f"COPY {names} FROM STDIN (FORMAT BINARY)"
    driver = connection.connection.driver_connection
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        types = _column_types(connection, table, tuple(columns))  # before the COPY: it is a query
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except dbapi_error as exc:
        # Raised by the driver, not through SQLAlchemy: wrap it the way SQLAlchemy would, so callers can tell
        # a lost database (OperationalError) from a row it refused (IntegrityError, DataError).
        if driver.closed or driver.broken:
            connection.invalidate()
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc


_JSON_OID, _TEXT_OID = 114, 25
# (table, columns) -> type oids. Builtin types have the same oids in every database and schema.
_COPY_TYPES: dict[tuple[str, tuple[str, ...]], tuple[int, ...]] = {}


def _column_types(connection: Connection, table: Table, columns: tuple[str, ...]) -> tuple[int, ...]:
    """The columns' type oids as the database has them, JSON as text: our JSON values are text already, and
    json's binary form is its text."""
    key = (table.name, columns)
    if key not in _COPY_TYPES:
        rows = connection.exec_driver_sql(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
            (connection.dialect.identifier_preparer.format_table(table),),
        ).all()
        oids = {name: oid for name, oid in rows}
        _COPY_TYPES[key] = tuple(_TEXT_OID if oids[name] == _JSON_OID else oids[name] for name in columns)
    return _COPY_TYPES[key]
