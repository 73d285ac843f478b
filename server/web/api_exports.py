"""Export API: ask for a monthly attendance export, follow its progress, download the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, request, send_file, url_for
from sqlalchemy import select

from server.exports.generate import totals_path
from server.exports.jobs import job_view
from server.exports.request import ExportRequestError, parse_request
from server.exports.runner import job_files
from server.exports.tables import ExportJob
from server.web import get_session, sessions
from server.web.auth import current_scope, require_user
from server.web.exports_access import export_settings, submit_export, visible_job
from server.web.i18n import locale

bp = Blueprint("exports_api", __name__)
MIMETYPES = {".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".csv": "text/csv"}
LIST_LIMIT = 100


def job_document(job: ExportJob) -> dict[str, Any]:
    view = job_view(job)
    done = job.status == "done"
    view["links"] = {
        "self": url_for("exports.exports_api.job", job_id=job.id),
        "download": url_for("exports.exports_api.download", job_id=job.id) if done else None,
        "totals": (
            url_for("exports.exports_api.download", job_id=job.id, part="totals")
            if done and view["format"] == "csv"
            else None
        ),
    }
    return view


@bp.post("/exports")
@require_user
def create() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = request.get_json(silent=True)
    if isinstance(body, dict) and "locale" not in body:
        body = {**body, "locale": locale()}  # the file speaks the language of the page (or Accept-Language)
    try:
        export = parse_request(body)
    except ExportRequestError as exc:
        abort(400, str(exc))
    job = submit_export(export)
    document = job_document(job)
    return document, 202, {"Location": document["links"]["self"]}


@bp.get("/exports")
@require_user
def jobs() -> dict[str, Any]:
    """The user's export jobs, newest first; an admin sees everyone's (``?mine=1`` for their own)."""
    query = select(ExportJob)
    if not current_scope().everything or request.args.get("mine") == "1":
        query = query.where(ExportJob.user_id == g.user.id)
    found = get_session().scalars(query.order_by(ExportJob.id.desc()).limit(LIST_LIMIT))
    return {"jobs": [job_document(job) for job in found]}


@bp.get("/exports/<int:job_id>")
@require_user
def job(job_id: int) -> dict[str, Any]:
    return job_document(visible_job(job_id))


@bp.get("/exports/<int:job_id>/download")
@require_user
def download(job_id: int) -> Response:
    found = visible_job(job_id)
    if found.status == "expired":
        abort(410, f"export job {job_id} has expired and its file was deleted; ask for the export again")
    if found.status != "done":
        abort(409, f"export job {job_id} is {found.status}, not done; its status is at /api/v1/exports/{job_id}")
    part = request.args.get("part", "")
    if part not in ("", "totals") or (part == "totals" and not found.file_path.endswith(".csv")):
        abort(400, "part must be totals, and only for a CSV export")
    files = job_files(export_settings().export_dir, found)
    path = Path(found.file_path)
    if part == "totals":
        path = totals_path(path)
    if path not in files or not path.is_file():
        current_app.logger.error("export job %d: file %s is missing", job_id, path)
        abort(410, f"the file of export job {job_id} is gone; ask for the export again")
    name = job_view(found)["file_name"]
    if part == "totals":
        name = totals_path(Path(name)).name
    db = get_session()
    sessions.record(db, "export_downloaded", g.user.name, f"job {job_id}: {name}")
    db.commit()
    response = send_file(
        path, mimetype=MIMETYPES[path.suffix], as_attachment=True, download_name=name, conditional=False, etag=False
    )
    response.headers["Cache-Control"] = "no-store"  # personal data: no copy in browser or proxy caches
    return response
