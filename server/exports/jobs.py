"""Export job lifecycle in the database: submit, claim, report progress, finish or fail, re-queue, expire."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.exports.request import ExportRequest
from server.exports.tables import ExportJob
from server.models import User, utcnow
from server.scope import Scope

OPEN = ("queued", "running")


class TooManyJobs(ValueError):
    """The user already has as many unfinished exports as allowed."""


class JobLost(RuntimeError):
    """Another worker took the job over (this one was presumed dead): stop without touching it."""


@dataclass(frozen=True)
class WorkerId:
    """``host:pid:nonce``: the nonce tells a restarted process from the one before it, even with the same pid."""

    host: str
    pid: int
    nonce: str

    @classmethod
    def new(cls) -> WorkerId:
        return cls(socket.gethostname()[:80], os.getpid(), secrets.token_hex(4))

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"

    def presumes_dead(self, other: str | None) -> bool:
        """Whether the worker named ``other`` is certainly gone: it ran on this host in a process that is not
        running any more (or in this very pid before a restart). Other hosts' workers only go stale."""
        parts = (other or "").split(":")
        if len(parts) < 3 or not parts[-2].isdigit():
            return True  # not written by a worker at all
        host, pid, nonce = ":".join(parts[:-2]), int(parts[-2]), parts[-1]
        if host != self.host:
            return False
        if pid == self.pid:
            return nonce != self.nonce
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, someone else's
        return False


def scope_snapshot(scope: Scope) -> dict[str, Any]:
    return {
        "role": scope.role,
        "company_id": scope.company_id,
        "jurisdiction": scope.jurisdiction,
        "site_ids": sorted(scope.site_ids),
        "describe": scope.describe(),
    }


def submit(session: Session, user: User, scope: Scope, request: ExportRequest, max_open: int) -> ExportJob:
    """Queue an export for ``user``; the caller has checked the request against the scope."""
    open_jobs = session.scalar(
        select(func.count()).select_from(ExportJob).where(ExportJob.user_id == user.id, ExportJob.status.in_(OPEN))
    )
    if open_jobs >= max_open:
        raise TooManyJobs(f"{open_jobs} exports are still queued or running; wait for them to finish")
    job = ExportJob(
        user_id=user.id,
        requested_by=user.name,
        scope=scope_snapshot(scope),
        parameters=request.model_dump(),
        status="queued",
        progress_done=0,
        progress_total=0,
        attempts=0,
    )
    session.add(job)
    session.flush()
    return job


def queued_ids(session: Session, limit: int) -> list[int]:
    return list(
        session.scalars(select(ExportJob.id).where(ExportJob.status == "queued").order_by(ExportJob.id).limit(limit))
    )


def claim(session: Session, job_id: int, worker: WorkerId) -> bool:
    """Take a queued job; only one worker of any process wins (the update is conditional)."""
    now = utcnow()
    done = session.execute(
        update(ExportJob)
        .where(ExportJob.id == job_id, ExportJob.status == "queued")
        .values(
            status="running",
            worker=str(worker),
            started_at=now,
            heartbeat_at=now,
            attempts=ExportJob.attempts + 1,
            progress_done=0,
            error=None,
        )
    )
    session.commit()
    return done.rowcount == 1


def _ours(job_id: int, worker: WorkerId):
    return (ExportJob.id == job_id, ExportJob.worker == str(worker), ExportJob.status == "running")


def report_progress(session: Session, job_id: int, worker: WorkerId, done: int, total: int) -> None:
    changed = session.execute(
        update(ExportJob).where(*_ours(job_id, worker)).values(progress_done=done, progress_total=total)
    )
    session.commit()
    if changed.rowcount != 1:
        raise JobLost(f"export job {job_id} is no longer this worker's")


def heartbeat(session: Session, worker: WorkerId, job_ids: set[int]) -> None:
    """The jobs this worker is running are alive (a slow query or the final save reports no progress)."""
    if job_ids:
        session.execute(
            update(ExportJob)
            .where(ExportJob.id.in_(sorted(job_ids)), ExportJob.worker == str(worker), ExportJob.status == "running")
            .values(heartbeat_at=utcnow())
        )
        session.commit()


def finish(
    session: Session, job_id: int, worker: WorkerId, *, path: str, size: int, rows: int, keep: timedelta
) -> bool:
    now = utcnow()
    changed = session.execute(
        update(ExportJob)
        .where(*_ours(job_id, worker))
        .values(
            status="done",
            file_path=path,
            file_size=size,
            rows=rows,
            progress_done=ExportJob.progress_total,
            finished_at=now,
            expires_at=now + keep,
        )
    )
    session.commit()
    return changed.rowcount == 1


def fail(session: Session, job_id: int, worker: WorkerId | None, error: str) -> None:
    where = _ours(job_id, worker) if worker is not None else (ExportJob.id == job_id,)
    session.execute(update(ExportJob).where(*where).values(status="failed", error=error[:1000], finished_at=utcnow()))
    session.commit()


def release(session: Session, job_id: int, worker: WorkerId) -> None:
    """Put a job this worker is stopping (server shutdown) back in the queue; the attempt does not count."""
    session.execute(
        update(ExportJob)
        .where(*_ours(job_id, worker))
        .values(status="queued", worker=None, attempts=ExportJob.attempts - 1, progress_done=0)
    )
    session.commit()


def requeue_abandoned(
    session: Session, me: WorkerId, in_flight: set[int], stale_after: timedelta, max_attempts: int
) -> tuple[int, int]:
    """Running jobs whose worker died (a crashed or killed server) or dropped them: queued again, or failed after
    ``max_attempts`` starts (an export that kills its server must not do so for ever). Returns (requeued, failed)."""
    stale_before = utcnow() - stale_after
    requeued = failed = 0
    for job in session.scalars(select(ExportJob).where(ExportJob.status == "running")):
        if job.worker == str(me):
            if job.id in in_flight:
                continue
        elif not (me.presumes_dead(job.worker) or job.heartbeat_at is None or job.heartbeat_at < stale_before):
            continue
        if job.attempts >= max_attempts:
            job.status, job.finished_at = "failed", utcnow()
            job.error = (
                f"the server stopped {job.attempts} times while making this export; "
                "ask for a smaller one (one site or one guard) or see the server log"
            )
            failed += 1
        else:
            job.status, job.worker, job.progress_done = "queued", None, 0
            requeued += 1
    session.commit()
    return requeued, failed


def expired_jobs(session: Session, now: datetime | None = None) -> list[ExportJob]:
    now = now or utcnow()
    return list(
        session.scalars(select(ExportJob).where(ExportJob.status == "done", ExportJob.expires_at < now).limit(100))
    )


def mark_expired(session: Session, job: ExportJob) -> None:
    job.status, job.file_path = "expired", None
    session.commit()


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=UTC).isoformat()


def job_view(job: ExportJob) -> dict[str, Any]:
    """The job as the API shows it (without the file's path on the server)."""
    request = ExportRequest.model_validate(job.parameters)
    total = job.progress_total or 0
    percent = 100 if job.status == "done" else (job.progress_done * 100 // total if total else 0)
    return {
        "id": job.id,
        "status": job.status,
        "month": request.month,
        "format": request.format,
        "company": request.company,
        "site": request.site,
        "guard": request.guard,
        "locale": request.locale,
        "file_name": request.file_name(),
        "progress": {"done": job.progress_done, "total": total, "percent": percent},
        "rows": job.rows,
        "file_size": job.file_size,
        "error": job.error,
        "requested_by": job.requested_by,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "expires_at": iso(job.expires_at),
    }
