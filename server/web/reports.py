"""Provincial reporting: the batches page (/reports) and its API; re-sending a refused or failed batch."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from server.models import utcnow
from server.reporting.outbox import ResendError, resend, status_counts
from server.reporting.tables import BATCH_STATUSES, ReportBatch
from server.reporting.views import batch_summary, may_resend, visible
from server.web import get_session
from server.web.auth import current_scope, deny, require_login, require_user, require_write
from server.web.pages import NAV_ITEMS

bp = Blueprint("reports", __name__)
NAV_ITEMS.append(("reports.index", "Provincial reporting"))

PAGE_SIZE = 100
MAX_LIMIT = 500
# The record kinds as people call them (gettext keys; translated in the template).
KIND_LABELS = {
    "guards": "Guard records",
    "assignments": "Employment trajectory",
    "duty_logs": "Duty logs",
    "findings": "Findings",
}
BADGES = {"accepted": "ok", "refused": "bad", "failed": "bad", "pending": "warn", "sending": "warn"}


def _whole(name: str, default: int | None, high: int) -> int | None:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        abort(400, f"{name} must be a whole number from 1 to {high}, got {raw!r}")
    return int(raw)


def _batches(limit: int) -> list[ReportBatch]:
    query = select(ReportBatch).where(visible(current_scope())).order_by(ReportBatch.id.desc()).limit(limit)
    status = request.args.get("status", "")
    if status:
        if status not in BATCH_STATUSES:
            abort(400, f"status must be one of {', '.join(BATCH_STATUSES)}")
        query = query.where(ReportBatch.status == status)
    if kind := request.args.get("kind", ""):
        query = query.where(ReportBatch.kind == kind)
    if before := _whole("before", None, 2**31):
        query = query.where(ReportBatch.id < before)
    return list(get_session().scalars(query))


def _batch_for_resend(batch_pk: int) -> ReportBatch:
    """The batch, if this user may re-send it; 403 (recorded) otherwise, 404 if there is none at all."""
    require_write()
    scope = current_scope()
    batch = get_session().get(ReportBatch, batch_pk)
    if batch is None:
        abort(404, f"no batch {batch_pk}")
    in_scope = get_session().scalar(select(ReportBatch.id).where(ReportBatch.id == batch_pk, visible(scope)))
    if in_scope is None:
        deny(f"batch {batch_pk} is outside this user's scope ({scope.describe()})")
    if not (scope.everything or scope.role == "manager"):
        deny(f"a {scope.role} user cannot re-send batches")
    return batch


@bp.get("/reports")
@require_login
def index() -> str:
    scope = current_scope()
    batches = _batches(PAGE_SIZE)
    return render_template(
        "reports.html",
        batches=[(b, batch_summary(b), may_resend(scope, b)) for b in batches],
        counts=status_counts(get_session(), visible(scope)),
        statuses=BATCH_STATUSES,
        chosen=request.args.get("status", ""),
        badges=BADGES,
        kind_labels=KIND_LABELS,
        resent=request.args.get("resent", "")[:12],
        not_resent=request.args.get("not_resent", "")[:12],
        sees_nothing=scope.role == "supervisor",
        older=batches[-1].id if len(batches) == PAGE_SIZE else None,
    )


@bp.post("/reports/<int:batch_pk>/resend")
@require_login
def resend_page(batch_pk: int) -> Response:
    batch = _batch_for_resend(batch_pk)
    try:
        resend(get_session(), batch, g.user.name, utcnow())
    except ResendError:
        # Someone else re-sent it first, or it went out meanwhile: the page shows its state now.
        return redirect(url_for("reports.index", not_resent=batch.id))
    get_session().commit()
    return redirect(url_for("reports.index", resent=batch.id))


@bp.get("/api/v1/reports/batches")
@require_user
def api_batches() -> Response:
    limit = _whole("limit", PAGE_SIZE, MAX_LIMIT)
    batches = _batches(limit or PAGE_SIZE)
    next_before = batches[-1].id if len(batches) == limit else None
    return jsonify(batches=[batch_summary(b) for b in batches], next_before=next_before)


@bp.post("/api/v1/reports/batches/<int:batch_pk>/resend")
@require_user
def api_resend(batch_pk: int) -> tuple[Response, int]:
    batch = _batch_for_resend(batch_pk)
    try:
        resend(get_session(), batch, g.user.name, utcnow())
    except ResendError as exc:
        return jsonify(error=str(exc)), 409
    get_session().commit()
    return jsonify(batch=batch_summary(batch)), 200


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_BATCH = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "batch_id": {"type": "string"},
        "kind": {"type": "string", "enum": ["guards", "assignments", "duty_logs", "findings"]},
        "company_id": {"type": ["string", "null"]},
        "province": {"type": "string"},
        "sender_id": {"type": "string"},
        "status": {"type": "string", "enum": list(BATCH_STATUSES)},
        "records": {"type": "integer"},
        "attempts": {"type": "integer"},
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "last_error": {"type": ["string", "null"]},
        "receipt_id": {"type": ["string", "null"]},
        "accepted": {"type": ["integer", "null"]},
        "rejected": {"type": "array", "items": {"type": "object"}},
        "created_at": {"type": "string", "format": "date-time"},
        "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "resent_by": {"type": ["string", "null"]},
        "resent_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

# This blueprint's part of the OpenAPI document (paths relative to /api/v1), for server/web/openapi.py.
OPENAPI_PATHS = {
    "/reports/batches": {
        "get": {
            "summary": "Provincial reporting batches in scope (manager: their company; police: their province), newest "
            "first, with status, attempts, last error and receipt",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": list(BATCH_STATUSES)},
                },
                {"name": "kind", "in": "query", "required": False, "schema": {"type": "string"}},
                {
                    "name": "before",
                    "in": "query",
                    "required": False,
                    "description": "the previous page's next_before",
                    "schema": {"type": "integer"},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": f"1-{MAX_LIMIT} (default {PAGE_SIZE})",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "batches": {"type": "array", "items": _BATCH},
                                    "next_before": {"type": ["integer", "null"]},
                                },
                                "required": ["batches"],
                            }
                        }
                    },
                },
                "400": _error("bad parameters"),
                "401": _error("no valid API token or login session"),
            },
        }
    },
    "/reports/batches/{batch_pk}/resend": {
        "post": {
            "summary": "Queue a refused or failed batch again with fresh attempts (admin; manager for their company)",
            "parameters": [
                {
                    "name": "batch_pk",
                    "in": "path",
                    "required": True,
                    "description": "batch number",
                    "schema": {"type": "integer"},
                }
            ],
            "responses": {
                "200": {
                    "description": "queued",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"batch": _BATCH}, "required": ["batch"]}
                        }
                    },
                },
                "401": _error("no valid API token or login session"),
                "403": _error("outside the user's role or scope (the refusal is recorded)"),
                "404": _error("no such batch"),
                "409": _error("the batch is not refused or failed"),
            },
        }
    },
}
