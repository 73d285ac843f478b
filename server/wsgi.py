"""WSGI entry for production web servers: ``gunicorn server.wsgi:app``, settings from GUARDPOST_* variables."""

from __future__ import annotations

import sys

from sqlalchemy.exc import OperationalError

from server.config import ConfigError
from server.web import create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(3)  # gunicorn's "worker failed to boot": it stops instead of respawning forever
except OperationalError as exc:
    print(f"error: cannot use the database: {exc.orig}; check GUARDPOST_DB", file=sys.stderr)
    sys.exit(3)
