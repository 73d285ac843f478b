"""Shared fixtures: real broker and database (from MQTT_URL / DATABASE_URL, else embedded)."""

from __future__ import annotations

import pytest

from tests.support.services import database, mqtt_broker
from tests.support.stack import running_stack


@pytest.fixture(scope="session")
def mqtt_url():
    with mqtt_broker() as url:
        yield url


@pytest.fixture
def db_url(tmp_path):
    with database(tmp_path) as url:
        yield url


@pytest.fixture
def stack(tmp_path, mqtt_url, db_url):
    with running_stack(tmp_path, mqtt_url, db_url) as running:
        yield running
