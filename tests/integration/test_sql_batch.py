"""``among`` with ``listed`` finds exactly the listed strings, whatever characters they hold, on the real database."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, insert, select

from server.config import normalise_db_url
from server.db import make_engine
from server.sql_batch import among, listed, pg_array_literal

# Text a database column can hold (PostgreSQL refuses NUL), including what array literals and JSON treat specially.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("{},\"\\ 'NULLnull[]:"),
        st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    ),
    max_size=12,
)


def test_among_matches_exactly_the_listed_strings(db_url):
    engine = make_engine(normalise_db_url(db_url))
    table = Table("among_probe", MetaData(), Column("name", String, primary_key=True))
    table.create(engine)
    dialect = engine.dialect.name
    query = select(table.c.name).where(among(table.c.name, "names", dialect))

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(stored=st.sets(TEXT, max_size=8), asked=st.sets(TEXT, max_size=8))
    def check(stored, asked):
        with engine.begin() as conn:
            conn.execute(table.delete())
            if stored:
                conn.execute(insert(table), [{"name": name} for name in stored])
            found = set(conn.scalars(query, {"names": listed(asked, dialect)}))
        assert found == stored & asked

    try:
        check()
    finally:
        table.drop(engine)
        engine.dispose()


def test_the_array_literal_quotes_every_element():
    assert pg_array_literal([]) == "{}"
    assert pg_array_literal(["a,b", 'say "hi"', "back\\slash", "NULL"]) == (
        '{"a,b","say \\"hi\\"","back\\\\slash","NULL"}'
    )
