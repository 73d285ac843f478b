"""The HTTP API described as OpenAPI 3.1, served at /api/v1/openapi.json; a test keeps it in step with the routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

bp = Blueprint("openapi", __name__)

TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}
MOMENT = {"type": ["string", "null"], "format": "date-time"}
INTEGER = {"type": "integer"}
NUMBER = {"type": ["number", "null"]}
BOOLEAN = {"type": "boolean"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(key: str, item: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return _object({key: {"type": "array", "items": _ref(item)}, **(extra or {})}, [key])


def _query(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema or TEXT}


def _path(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": TEXT}


LIMIT = _query("limit", "page size, 1-1000 (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000})


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "bad parameters; `error` says which and how",
        401: "no valid API token or login session",
        403: "outside the user's role or scope, or CSRF token missing (the refusal is recorded)",
        404: "not found",
        413: "upload too large",
        409: "not ready yet (the job is still queued or running)",
        410: "gone: the export expired and its file was deleted",
        422: "the request is well-formed but breaks a rule; `error` or `errors` say which",
        429: "too many open requests of this user; wait for one to finish",
        503: "a required part (database, template key) is unavailable",
    }
    return {str(code): _json(_ref("Error"), meaning[code]) for code in codes}


def _operation(summary: str, ok: dict[str, Any], *, params=(), errors=(400, 401, 403), **extra) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": list(params),
        "responses": {**ok, **_errors(*errors)},
    }
    operation.update(extra)
    return operation


SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": TEXT}, ["error"]),
    "Terminal": _object(
        {
            "device_id": TEXT,
            "post_id": NULLABLE_TEXT,
            "online": BOOLEAN,
            "last_seen_at": MOMENT,
            "outbox_depth": {"type": ["integer", "null"]},
            "clock_synced": {"type": ["boolean", "null"]},
            "alarms": {"type": "array", "items": TEXT},
        }
    ),
    "OnDuty": _object(
        {
            "guard_id": TEXT,
            "name": NULLABLE_TEXT,
            "since": MOMENT,
            "last_seen": MOMENT,
            "method": TEXT,
            "distance": NUMBER,
            "liveness": NULLABLE_TEXT,
            "reviewed_by": {"type": ["string", "null"], "description": "who confirmed a borderline check-in"},
            "device_id": TEXT,
            "post_id": NULLABLE_TEXT,
        }
    ),
    "Post": _object(
        {
            "post_id": NULLABLE_TEXT,
            "name": NULLABLE_TEXT,
            "on_duty": {"type": "array", "items": _ref("OnDuty")},
            "terminals": {"type": "array", "items": _ref("Terminal")},
        }
    ),
    "LiveSite": _object(
        {
            "site_id": TEXT,
            "name": TEXT,
            "on_duty": {"type": "array", "items": _ref("OnDuty")},
            "terminals": {"type": "array", "items": _ref("Terminal")},
            "posts": {"type": "array", "items": _ref("Post"), "description": "the same, grouped by post"},
        }
    ),
    "Event": _object(
        {
            "event_id": TEXT,
            "device_id": TEXT,
            "site_id": TEXT,
            "seq": INTEGER,
            "type": {"enum": ["check_in", "check_out", "patrol", "denied"]},
            "method": TEXT,
            "guard_id": NULLABLE_TEXT,
            "guard_name": NULLABLE_TEXT,
            "captured_at": MOMENT,
            "received_at": MOMENT,
            "clock_synced": BOOLEAN,
            "match": {"type": ["object", "null"]},
            "evidence_sha256": NULLABLE_TEXT,
            "candidate_guard_id": NULLABLE_TEXT,
            "card": {"type": ["object", "null"]},
        }
    ),
    "Reject": _object(
        {
            "id": INTEGER,
            "received_at": MOMENT,
            "topic": TEXT,
            "device_id": NULLABLE_TEXT,
            "reason": TEXT,
            "detail": TEXT,
            "payload_size": INTEGER,
            "payload_excerpt": TEXT,
        }
    ),
    "DutyRecord": _object(
        {
            "guard_id": TEXT,
            "site_id": TEXT,
            "post_id": NULLABLE_TEXT,
            "shift_id": NULLABLE_TEXT,
            "date": {"type": "string", "format": "date"},
            "status": TEXT,
            "first_in": MOMENT,
            "last_out": MOMENT,
            "minutes_worked": INTEGER,
            "overtime_minutes": INTEGER,
            "late_minutes": INTEGER,
            "early_leave_minutes": INTEGER,
            "check_in_method": NULLABLE_TEXT,
            "check_in_distance": NUMBER,
            "corrected": BOOLEAN,
            "event_ids": {"type": "array", "items": TEXT},
        }
    ),
    "CorrectionRequest": _object(
        {
            "guard_id": TEXT,
            "shift_id": NULLABLE_TEXT,
            "date": {"type": "string", "format": "date"},
            "field": TEXT,
            "value": TEXT,
            "reason": TEXT,
        },
        ["guard_id", "date", "field", "value", "reason"],
    ),
    "Correction": _object(
        {
            "id": INTEGER,
            "field": TEXT,
            "old_value": NULLABLE_TEXT,
            "new_value": TEXT,
            "corrected_by": TEXT,
            "corrected_at": MOMENT,
            "reason": TEXT,
        }
    ),
    "Finding": _object(
        {
            "id": INTEGER,
            "kind": TEXT,
            "severity": {"enum": ["info", "warning", "violation"]},
            "site_id": NULLABLE_TEXT,
            "device_id": NULLABLE_TEXT,
            "guard_id": NULLABLE_TEXT,
            "event_id": NULLABLE_TEXT,
            "detail": TEXT,
            "created_at": MOMENT,
            "resolved_at": MOMENT,
            "resolved_by": NULLABLE_TEXT,
        }
    ),
    "Company": _object(
        {
            "company_id": TEXT,
            "name": TEXT,
            "credit_code": NULLABLE_TEXT,
            "filing_status": {"enum": ["filed", "pending", "revoked"]},
            "home_province": TEXT,
            "home_province_name": NULLABLE_TEXT,
            "cross_region_filings": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "Site": _object(
        {
            "site_id": TEXT,
            "name": TEXT,
            "address": TEXT,
            "company_id": NULLABLE_TEXT,
            "province": NULLABLE_TEXT,
            "province_name": NULLABLE_TEXT,
            "timezone": TEXT,
            "posts": {"type": "array", "items": _object({"post_id": TEXT, "name": TEXT})},
        }
    ),
    "GuardRow": _object(
        {
            "guard_id": TEXT,
            "name": TEXT,
            "id_number_masked": NULLABLE_TEXT,
            "company_id": NULLABLE_TEXT,
            "face_consent": BOOLEAN,
            "certificate_status": TEXT,
        }
    ),
    "ExportRequest": _object(
        {
            "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
            "format": {"enum": ["xlsx", "csv"]},
            "company": TEXT,
            "site": TEXT,
            "guard": TEXT,
        },
        ["month", "format"],
    ),
    "ExportJob": _object(
        {
            "id": INTEGER,
            "status": {"enum": ["queued", "running", "done", "failed", "expired"]},
            "progress": {"type": "object"},
            "links": {"type": "object"},
        }
    ),
    "ImportResult": _object({"imported": INTEGER, "dry_run": BOOLEAN}),
    "ImportErrors": _object({"errors": {"type": "array", "items": _object({"line": INTEGER, "column": TEXT})}}),
}

UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": _object({"file": {"type": "string", "format": "binary"}}, ["file"]),
        }
    },
}
DRY_RUN = _query("dry_run", "1 to check the file without storing anything")
DAY = {"type": "string", "format": "date"}


def _paths() -> dict[str, Any]:
    import_ok = {"200": _json(_ref("ImportResult")), "422": _json(_ref("ImportErrors"), "rows with errors")}
    return {
        "/health": {
            "get": _operation(
                "Liveness and database check (no login)",
                {"200": _json(_object({"status": TEXT, "database": TEXT}))},
                errors=(503,),
                security=[],
            )
        },
        "/openapi.json": {
            "get": _operation("This document", {"200": _json({"type": "object"})}, errors=(), security=[])
        },
        "/live": {
            "get": _operation(
                "Live duty board: who is on duty at each site in scope, and its terminals",
                {
                    "200": _json(
                        _object({"generated_at": MOMENT, "sites": {"type": "array", "items": _ref("LiveSite")}})
                    )
                },
                errors=(401,),
            )
        },
        "/events": {
            "get": _operation(
                "Check-in events in scope, newest first",
                {"200": _json(_list_of("events", "Event", {"next_cursor": NULLABLE_TEXT}))},
                params=[
                    _query("site", "only this site (403 outside scope)"),
                    _query("device", "only this terminal"),
                    _query("guard", "only this guard"),
                    _query("type", "check_in, check_out, patrol or denied"),
                    _query("since", "inclusive, ISO 8601", MOMENT),
                    _query("until", "exclusive, ISO 8601", MOMENT),
                    _query("cursor", "the previous page's next_cursor"),
                    LIMIT,
                ],
            )
        },
        "/rejects": {
            "get": _operation(
                "Messages ingest refused, with why (unknown devices: admins only)",
                {"200": _json(_list_of("rejects", "Reject"))},
                params=[_query("device", "only this terminal"), LIMIT],
            )
        },
        "/terminal/gallery": {
            "get": _operation(
                "A terminal's encrypted face and card gallery (HMAC-signed terminal request, not a user token)",
                {"200": _json({"type": "object"}), "304": {"description": "unchanged since the ETag"}},
                errors=(401, 503),
                security=[{"terminal": []}],
            )
        },
        "/duty": {
            "get": _operation(
                "Duty log records in scope for a day or a range of at most 62 days",
                {"200": _json(_list_of("records", "DutyRecord", {"from": DAY, "to": DAY}))},
                params=[
                    _query("date", "one day (default today)", DAY),
                    _query("from", "first day", DAY),
                    _query("to", "last day", DAY),
                    _query("site", "only this site (403 outside scope)"),
                    _query("guard", "only this guard"),
                ],
            )
        },
        "/duty/corrections": {
            "post": _operation(
                "Correct a duty record (admin, manager, supervisor in scope; reason required; audited)",
                {"201": _json(_ref("Correction"), "stored")},
                errors=(400, 401, 403, 422),
                requestBody={"required": True, "content": {"application/json": {"schema": _ref("CorrectionRequest")}}},
            )
        },
        "/findings": {
            "get": _operation(
                "Findings to review (open ones unless open=0)",
                {"200": _json(_list_of("findings", "Finding"))},
                params=[
                    _query("open", "0 to include resolved ones"),
                    _query("kind", "finding kind"),
                    _query("site", "only this site"),
                    _query("guard", "only this guard"),
                    LIMIT,
                ],
            )
        },
        "/imports/guards": {
            "post": _operation(
                "Import guards from CSV or XLSX: every row or none (admin, manager within their company)",
                import_ok,
                params=[DRY_RUN],
                errors=(400, 401, 403, 413, 503),
                requestBody=UPLOAD,
            )
        },
        "/imports/assignments": {
            "post": _operation(
                "Import postings (guard, site, start, end): every row or none",
                import_ok,
                params=[DRY_RUN],
                errors=(400, 401, 403, 413),
                requestBody=UPLOAD,
            )
        },
        "/companies": {
            "get": _operation(
                "Companies in scope with filings", {"200": _json(_list_of("companies", "Company"))}, errors=(401,)
            )
        },
        "/sites": {
            "get": _operation("Sites in scope with posts", {"200": _json(_list_of("sites", "Site"))}, errors=(401,))
        },
        "/guards": {
            "get": _operation(
                "Guards in scope (masked ID numbers only)",
                {"200": _json(_list_of("guards", "GuardRow", {"next_after": NULLABLE_TEXT}))},
                params=[
                    _query("company", "employer"),
                    _query("site", "currently posted at"),
                    _query("after", "the previous page's next_after"),
                    LIMIT,
                ],
            )
        },
        "/exports": {
            "post": _operation(
                "Ask for a monthly attendance export (XLSX or CSV) in scope; made in the background",
                {"202": _json(_ref("ExportJob"), "queued; Location is the job")},
                errors=(400, 401, 403, 429),
                requestBody={"required": True, "content": {"application/json": {"schema": _ref("ExportRequest")}}},
            ),
            "get": _operation(
                "The user's export jobs (admins: everyone's, or only their own with mine=1)",
                {"200": _json(_list_of("jobs", "ExportJob"))},
                params=[_query("mine", "1: only my jobs (admins)")],
                errors=(401,),
            ),
        },
        "/exports/{job_id}": {
            "get": _operation(
                "One export job: status, progress, links",
                {"200": _json(_ref("ExportJob"))},
                params=[_path("job_id", "export job id")],
                errors=(401, 403, 404),
            )
        },
        "/exports/{job_id}/download": {
            "get": _operation(
                "The finished file (XLSX, or CSV; part=totals for the CSV totals)",
                {
                    "200": {
                        "description": "the file",
                        "content": {
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                            "text/csv": {},
                        },
                    }
                },
                params=[_path("job_id", "export job id"), _query("part", "totals (CSV exports only)")],
                errors=(400, 401, 403, 404, 409, 410),
            )
        },
        "/guards/{guard_id}/photos": {
            "post": _operation(
                "Enrol a guard's photos (1-5, JPEG/PNG, 12 MB each); each is stored as an encrypted template or "
                "refused with why; the photos themselves are not kept",
                {
                    "201": _json(
                        _object({"guard_id": TEXT, "stored": {"type": "array"}, "refused": {"type": "array"}})
                    ),
                    "422": _json(_object({"refused": {"type": "array"}}), "no photo was usable"),
                },
                params=[_path("guard_id", "guard id")],
                errors=(400, 401, 403, 404, 413, 503),
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _object(
                                {"photo": {"type": "array", "items": {"type": "string", "format": "binary"}}}
                            )
                        }
                    },
                },
            )
        },
        "/guards/{guard_id}": {
            "get": _operation(
                "One guard: certificate status, employment trajectory, consent",
                {"200": _json({"type": "object"})},
                params=[_path("guard_id", "guard id")],
                errors=(401, 403, 404),
            )
        },
    }


def document() -> dict[str, Any]:
    from server.web import reports  # the reporting blueprint describes its own routes

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GuardPost API",
            "version": "1",
            "description": (
                "Guard attendance and identity verification. Every answer is limited to the caller's scope: "
                "admin everything, police a jurisdiction (read-only), a manager their company, a supervisor "
                "their sites. Browser sessions must send the X-CSRF-Token header on writes; API tokens need not."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {**_paths(), **reports.OPENAPI_PATHS},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "guardpost users add / users token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "__Host-guardpost-session"},
                "terminal": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-GuardPost-Signature",
                    "description": "HMAC of method, path and timestamp with the terminal secret (docs/protocol.md)",
                },
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return document()
