"""The record kinds we report and, for each, our field names and their types (what a mapping may refer to)."""

from __future__ import annotations

from typing import Literal

Kind = Literal["guards", "assignments", "duty_logs", "findings"]
KINDS: tuple[str, ...] = ("guards", "assignments", "duty_logs", "findings")

# text: str; int; bool; date: YYYY-MM-DD; datetime: naive UTC ISO; number: a sensitive number kept as
# {"masked": ..., "encrypted": ...} in the snapshot, sent masked unless the mapping asks for it in full.
FieldType = Literal["text", "int", "bool", "date", "datetime", "number"]

_COMPANY = {"company_id": "text", "company_name": "text", "company_credit_code": "text"}
_GUARD = {"guard_id": "text", "guard_name": "text", "id_number": "number"}
_SITE = {"site_id": "text", "site_name": "text"}

FIELDS: dict[str, dict[str, FieldType]] = {
    "guards": {
        "guard_id": "text",
        "name": "text",
        "id_number": "number",
        "sex": "text",
        "birth_date": "date",
        **_COMPANY,
        "certificate_number": "number",
        "certificate_issued_on": "date",
        "certificate_valid_until": "date",
        "face_consent": "bool",
        "registered_at": "datetime",
    },
    "assignments": {
        "assignment_id": "int",
        **_GUARD,
        **_COMPANY,
        **_SITE,
        "site_address": "text",
        "site_province": "text",
        "start": "datetime",
        "end": "datetime",
        "active": "bool",
    },
    "duty_logs": {
        **_GUARD,
        **_COMPANY,
        **_SITE,
        "post_id": "text",
        "shift_id": "text",
        "date": "date",
        "status": "text",
        "first_in": "datetime",
        "last_out": "datetime",
        "minutes_worked": "int",
        "overtime_minutes": "int",
        "late_minutes": "int",
        "early_leave_minutes": "int",
        "check_in_method": "text",
        "corrected": "bool",
    },
    "findings": {
        "finding_id": "int",
        "kind": "text",
        "severity": "text",
        **_SITE,
        **_GUARD,
        **_COMPANY,
        "device_id": "text",
        "detail": "text",
        "created_at": "datetime",
        "resolved_at": "datetime",
        "resolved": "bool",
    },
}
