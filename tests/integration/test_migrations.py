"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command

from server.db import make_engine
from server.migrate import alembic_config, current_revision, upgrade


def test_migrated_database_matches_the_models(db_url):
    engine = make_engine(db_url)  # runs the migrations
    try:
        assert current_revision(engine) is not None
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.check(config)  # raises if the models and the migrated schema differ
        upgrade(engine)  # running it again is a no-op
    finally:
        engine.dispose()
