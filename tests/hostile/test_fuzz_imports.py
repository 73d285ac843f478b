"""Hostile tables through the real importers: every file imports whole or is refused whole, with line numbers."""

from __future__ import annotations

import csv
import io

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server import companies
from server.db import make_engine, make_sessionmaker
from server.import_assignments import ASSIGNMENT_COLUMNS, import_assignments
from server.importer import GUARD_COLUMNS, ImportRejected, import_guards
from server.lookup_digests import ServerCipher
from server.models import Assignment, Guard
from tests.support.ids import resident_id

cell = st.one_of(
    st.text(max_size=24),
    st.sampled_from(["", "site-a", "acme", "2026-11-01", "yes", "no", "=1+1", "@SUM(A1)", "\ufeff", "0" * 40]),
    st.builds(resident_id, st.integers(0, 999)),
)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    maker = make_sessionmaker(engine)
    with maker.begin() as s:
        companies.add_company(s, "acme", "Acme", home_province="44", filing_status="filed")
        companies.add_site(s, "site-a", "A", tz="Asia/Shanghai", company_id="acme")
    yield maker
    engine.dispose()


def table(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.lists(st.lists(cell, min_size=len(GUARD_COLUMNS), max_size=len(GUARD_COLUMNS)), max_size=6))
def test_guard_files_import_whole_or_not_at_all(sessions, rows):
    cipher = ServerCipher(Fernet.generate_key())
    with sessions() as session:
        before = count(session, Guard)
        try:
            result = import_guards(session, cipher, table(GUARD_COLUMNS, rows), "guards.csv")
        except ImportRejected as rejected:
            assert rejected.errors and all(e.line >= 1 and e.message for e in rejected.errors)
            assert count(session, Guard) == before  # nothing half-added
            return
        assert count(session, Guard) == before + result.imported and result.imported <= len(rows)  # blank rows skip
        session.rollback()


@FUZZ
@given(st.lists(st.lists(cell, min_size=len(ASSIGNMENT_COLUMNS), max_size=len(ASSIGNMENT_COLUMNS)), max_size=6))
def test_assignment_files_import_whole_or_not_at_all(sessions, rows):
    with sessions() as session:
        before = count(session, Assignment)
        try:
            result = import_assignments(session, table(ASSIGNMENT_COLUMNS, rows), "postings.csv")
        except ImportRejected as rejected:
            assert rejected.errors and all(e.line >= 1 and e.message for e in rejected.errors)
            assert count(session, Assignment) == before
            return
        assert count(session, Assignment) == before + result.imported
        session.rollback()
