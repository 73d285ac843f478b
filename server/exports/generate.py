"""Make one export: plan it within a scope, then stream every guard's rows and totals into files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from server.exports.request import ExportRequest
from server.exports.rows import guard_rows, guard_totals
from server.exports.source import batches, plan_export
from server.exports.writers import CsvWriter, ExportWriter, XlsxWriter
from server.scope import Scope

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    guards: int
    rows: int
    files: tuple[Path, ...]


def totals_path(path: Path) -> Path:
    """Where a CSV export's totals go: ``attendance.csv`` -> ``attendance.totals.csv``."""
    return path.with_name(path.stem + ".totals.csv")


def open_private(path: Path, mode: str):
    """Create ``path`` readable by this user only (0600), replacing a file there; never follows a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding="utf-8-sig", newline="")  # the BOM lets Excel read the Chinese


@contextmanager
def open_writer(request: ExportRequest, path: Path) -> Iterator[tuple[ExportWriter, tuple[Path, ...]]]:
    """The writer for ``request.format`` on ``path`` (and, for CSV, its totals file), with files closed after."""
    with ExitStack() as stack:
        if request.format == "xlsx":
            stream = stack.enter_context(open_private(path, "wb"))
            yield XlsxWriter(stream, request.locale, title=f"Attendance {request.month}"), (path,)
        else:
            rows = stack.enter_context(open_private(path, "w"))
            totals = stack.enter_context(open_private(totals_path(path), "w"))
            yield CsvWriter(rows, totals, request.locale), (path, totals_path(path))


def write_export(
    session: Session, scope: Scope, request: ExportRequest, path: Path, progress: Progress | None = None
) -> ExportResult:
    """Write the export to ``path`` (and its totals file for CSV); ``progress(done, total)`` counts guards.

    ``progress`` may raise to abandon the export (the files are then incomplete; the caller removes them).
    """
    plan = plan_export(session, scope, request)
    total, done, rows = len(plan.guard_ids), 0, 0
    if progress is not None:
        progress(0, total)
    with open_writer(request, path) as (writer, files):
        for batch in batches(session, plan):
            for guard, entries in batch:
                lines = guard_rows(guard, entries, plan.days, plan.registry)
                writer.add(lines, guard_totals(guard, lines))
                rows, done = rows + len(lines), done + 1
                if progress is not None:
                    progress(done, total)
        writer.close()
    return ExportResult(total, rows, files)
