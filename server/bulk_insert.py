"""Insert many rows at once: COPY on PostgreSQL, one multi-row INSERT on SQLite, executemany elsewhere.

Values for JSON columns are JSON text, already serialised (ingest has the payload as received).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

SQLITE_MAX_VARIABLES = 32766  # SQLite 3.32 and later


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (column name -> value, the same columns in each) within the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
    elif connection.dialect.name == "sqlite":
        _multi_values(connection, table, rows)
    else:
        as_json = _json_columns(table, rows[0])
        connection.execute(
            insert(table), [{k: json.loads(v) if k in as_json else v for k, v in r.items()} for r in rows]
        )


def _json_columns(table: Table, row: dict[str, Any]) -> set[str]:
    return {name for name in row if isinstance(table.c[name].type, JSON)}


def _multi_values(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    # executemany steps the statement once per row and drops the GIL each time, which then has to be won
    # back from paho's busy thread; one INSERT with many VALUES steps once.
    dialect = connection.dialect
    columns = list(rows[0])
    as_json = _json_columns(table, rows[0])
    processors = [
        None if name in as_json else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in columns
    ]
    quote = dialect.identifier_preparer
    head = f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(name) for name in columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    per_statement = max(1, SQLITE_MAX_VARIABLES // len(columns))
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        params = [
            process(row[name]) if process else row[name]
            for row in part
            for name, process in zip(columns, processors, strict=True)
        ]
        connection.exec_driver_sql(head + ", ".join([one] * len(part)), tuple(params))


def _copy(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    # psycopg's executemany sends one prepared statement per row, ~40 us of Python each; COPY streams them.
    columns = list(rows[0])
    quote = connection.dialect.identifier_preparer
    statement = f"COPY {quote.format_table(table)} ({', '.join(quote.quote(name) for name in columns)}) FROM STDIN"
    driver = connection.connection.driver_connection
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    except dbapi_error as exc:
        # Raised by the driver, not through SQLAlchemy: wrap it the way SQLAlchemy would, so callers can tell
        # a lost database (OperationalError) from a row it refused (IntegrityError, DataError).
        if driver.closed or driver.broken:
            connection.invalidate()
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc
