"""Statements for a batch of rows: a list of values as one bound parameter, inserts that skip duplicate keys.

SQLAlchemy renders ``in_()`` afresh for each length of list and binds every value on its own; for ingest's
lists of a few hundred ids that was most of a query's cost. With ``among`` the statement has one parameter
(an array literal cast to ``text[]`` on PostgreSQL, a JSON array read back with ``json_each`` on SQLite),
so it can be built once, compiled once, and run with ``listed(values)`` as that parameter. Both are one
string: psycopg dumps a Python list element by element in Python, about 3 us a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, Insert, String, Table, any_, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql.elements import ColumnElement

DIALECTS = ("postgresql", "sqlite")  # what GuardPost runs on


def among(column: ColumnElement[str], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the strings bound as ``name`` (pass ``listed(values, dialect)`` when executing)."""
    if dialect == "postgresql":
        return column == any_(cast(bindparam(name, type_=String), ARRAY(String)))
    _check(dialect)
    values = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(values.c.value))


def listed(values: Iterable[str], dialect: str) -> Any:
    """The parameter value ``among`` expects for these strings."""
    if dialect == "postgresql":
        return pg_array_literal(values)
    return json.dumps(list(values))


def pg_array_literal(values: Iterable[str]) -> str:
    """PostgreSQL's text form of a text[]: every element quoted, so commas, braces and 'NULL' stay text."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def insert_ignoring_duplicates(session: Session, model: type[DeclarativeBase] | Table) -> Insert:
    """An INSERT for ``model``'s table that skips rows whose primary or unique key is already there."""
    table = model if isinstance(model, Table) else model.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    _check(dialect)
    return sqlite.insert(table).on_conflict_do_nothing()


def _check(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"GuardPost needs PostgreSQL or SQLite, not {dialect}")
