"""WSGI entry for production web servers: ``gunicorn server.wsgi:app``, settings from GUARDPOST_* variables."""

from __future__ import annotations

from flask import Flask

from server.config import ServerSettings
from server.schema_lock import schema_lock
from server.web import create_app
from server.web_boot import one_line_errors


def _build() -> Flask:
    settings = ServerSettings.from_env()
    with schema_lock(settings.db_url):  # workers started together upgrade the schema one after the other
        return create_app(settings)


app = one_line_errors(_build)
