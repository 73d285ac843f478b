"""Who may ask for which export and see which job: the checks the export API and page share."""

from __future__ import annotations

from flask import abort, current_app, g

from server.exports import jobs
from server.exports.access import refusal
from server.exports.request import ExportRequest
from server.exports.settings import ExportSettings
from server.exports.tables import ExportJob
from server.exports.worker import EXTENSION
from server.models import Company, Guard, Site
from server.web import get_session, sessions
from server.web.auth import current_scope, deny


def export_settings() -> ExportSettings:
    worker = current_app.extensions.get(EXTENSION)
    return worker.settings if worker is not None else ExportSettings.from_env()


def wake_worker() -> None:
    worker = current_app.extensions.get(EXTENSION)
    if worker is not None:
        worker.wake()


def require_export_scope(request: ExportRequest) -> None:
    """403 (recorded) for a company, site or guard outside the user's scope; 404 for an admin's typo."""
    scope, db = current_scope(), get_session()
    if scope.everything:
        for name, model in (("company", Company), ("site", Site), ("guard", Guard)):
            value = getattr(request, name)
            if value and db.get(model, value) is None:
                abort(404, f"no {name} {value}")
    reason = refusal(db, scope, request)
    if reason is not None:
        deny(reason)


def submit_export(request: ExportRequest) -> ExportJob:
    """Check the scope, queue the job, record who asked, wake the worker; 429 when too many are open."""
    require_export_scope(request)
    db = get_session()
    try:
        job = jobs.submit(db, g.user, current_scope(), request, export_settings().max_open_per_user)
    except jobs.TooManyJobs as exc:
        db.rollback()
        abort(429, str(exc))
    sessions.record(db, "export_requested", g.user.name, f"job {job.id}: {request.file_name()}")
    db.commit()
    wake_worker()
    return job


def visible_job(job_id: int) -> ExportJob:
    """The job if it is the user's (an admin sees every job); 404 if there is none, 403 if it is another's."""
    job = get_session().get(ExportJob, job_id)
    if job is None:
        abort(404, f"no export job {job_id}")
    if job.user_id != g.user.id and not current_scope().everything:
        deny(f"export job {job_id} belongs to another user")
    return job
