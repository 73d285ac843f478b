"""Run one claimed export job: write its files privately under the data directory, report progress, finish."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from server.exports import jobs
from server.exports.generate import totals_path, write_export
from server.exports.request import ExportRequest
from server.exports.settings import ExportSettings
from server.exports.tables import ExportJob
from server.models import User
from server.scope import scope_for

log = logging.getLogger("guardpost.exports")
PROGRESS_EVERY_S = 0.5  # progress reaches the database at most this often: polling pages need no more


class Cancelled(Exception):
    """The server is stopping: the job goes back to the queue."""


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # exports hold personal data: only the server's user may list or read them
    return path


def job_files(export_dir: Path, job: ExportJob) -> list[Path]:
    """Every file a finished job has on disk (the workbook, or the CSV and its totals)."""
    if not job.file_path:
        return []
    path = Path(job.file_path)
    files = [path, totals_path(path)] if path.suffix == ".csv" else [path]
    return [f for f in files if f.resolve().parent == export_dir.resolve()]


def remove_files(export_dir: Path, job: ExportJob) -> None:
    for path in job_files(export_dir, job):
        path.unlink(missing_ok=True)


class _Progress:
    def __init__(self, sessions: sessionmaker[Session], job_id: int, worker: jobs.WorkerId, stop: threading.Event):
        self.sessions, self.job_id, self.worker, self.stop = sessions, job_id, worker, stop
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.stop.is_set():
            raise Cancelled
        now = time.monotonic()
        if done in (0, total) or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            with self.sessions() as session:
                jobs.report_progress(session, self.job_id, self.worker, done, total)


def _message(exc: Exception) -> str:
    """One line for the requester; internals (SQL, paths) stay in the server log."""
    if isinstance(exc, OSError):
        return f"cannot write the export file: {exc.strerror or exc}; check free space in the data directory"
    return f"the export failed ({type(exc).__name__}); the server log has the details"


def run_job(
    sessions: sessionmaker[Session],
    settings: ExportSettings,
    job_id: int,
    worker: jobs.WorkerId,
    stop: threading.Event,
) -> str:
    """Make the files of a job this worker claimed; returns how it ended: done, failed, released or lost."""
    export_dir = ensure_dir(settings.export_dir)
    work = export_dir / f"tmp-{job_id}-{secrets.token_hex(4)}"
    try:
        with sessions() as session:
            job = session.get(ExportJob, job_id)
            user = session.get(User, job.user_id) if job is not None else None
            if job is None or user is None or user.disabled:
                jobs.fail(session, job_id, worker, "the user who asked for this export is disabled or gone")
                return "failed"
            request = ExportRequest.model_validate(job.parameters)
            scope = scope_for(user)  # the scope now: a user whose rights shrank gets no more than they have
        ensure_dir(work)
        with sessions() as session:
            progress = _Progress(sessions, job_id, worker, stop)
            result = write_export(session, scope, request, work / f"job-{job_id}.{request.format}", progress)
        final = [export_dir / path.name for path in result.files]
        for source, target in zip(result.files, final, strict=True):
            os.replace(source, target)
        with sessions() as session:
            size = sum(path.stat().st_size for path in final)
            keep = timedelta(days=settings.keep_days)
            if not jobs.finish(session, job_id, worker, path=str(final[0]), size=size, rows=result.rows, keep=keep):
                for path in final:
                    path.unlink(missing_ok=True)
                return "lost"
        log.info("export job %d done: %d rows for %d guards, %d bytes", job_id, result.rows, result.guards, size)
        return "done"
    except Cancelled:
        with sessions() as session:
            jobs.release(session, job_id, worker)
        log.info("export job %d put back in the queue: the server is stopping", job_id)
        return "released"
    except jobs.JobLost:
        log.warning("export job %d was taken over by another worker; dropping this attempt", job_id)
        return "lost"
    except Exception as exc:  # the worker must outlive any one export
        log.exception("export job %d failed", job_id)
        with sessions() as session:
            jobs.fail(session, job_id, worker, _message(exc))
        return "failed"
    finally:
        shutil.rmtree(work, ignore_errors=True)
