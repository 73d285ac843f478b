"""Start-up of the production web app: settings checked and schema upgraded once, failures as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from server.config import ConfigError, ServerSettings
from server.schema_lock import schema_lock

T = TypeVar("T")


def one_line_errors(start: Callable[[], T]) -> T:
    """Run ``start``; a bad setting exits 2 and an unusable database 3, each with one line on stderr."""
    try:
        return start()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except OperationalError as exc:
        print(f"error: cannot use the database: {exc.orig}; check GUARDPOST_DB", file=sys.stderr, flush=True)
        sys.exit(3)


def prepare() -> None:
    """In gunicorn's master, before any worker: check every setting and bring the schema up to date."""
    from server.crypto import KEY_ENV, KEY_FILE_ENV, load_cipher
    from server.db import make_engine
    from server.metrics_access import load_access

    def check() -> None:
        settings = ServerSettings.from_env()
        load_access()
        if settings.key_file or os.environ.get(KEY_FILE_ENV) or os.environ.get(KEY_ENV):
            load_cipher(settings.key_file)
        with schema_lock(settings.db_url):
            make_engine(settings.db_url).dispose()  # no connection crosses the fork into the workers

    one_line_errors(check)
