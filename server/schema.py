"""Every table of the server, gathered so create_all and Alembic see the same metadata."""

from __future__ import annotations

import server.audit.tables  # noqa: F401  (registers the audit chain)
import server.duty.tables  # noqa: F401  (registers the duty tables)
import server.exports.tables  # noqa: F401  (registers export_jobs)
import server.models  # noqa: F401  (registers the core tables)
import server.reporting.tables  # noqa: F401  (registers the reporting outbox)
from server.models import Base

metadata = Base.metadata
