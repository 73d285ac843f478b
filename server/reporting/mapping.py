"""Turn a snapshot record (our fields) into the province's items: pure transforms, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.reporting.config import ItemSpec, KindMapping
from server.reporting.fields import FIELDS

# Decrypts a stored number (base64 Fernet token) for items that ask for it in full.
Reveal = Callable[[str], str]


class MappingError(ValueError):
    """A record the mapping cannot express; the message names the item and how to fix the mapping."""


def _text_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_value(
    spec: ItemSpec, field_type: str, value: Any, default_zone: str, reveal: Reveal | None, masked: bool = False
) -> Any:
    """One item's value; ``value`` is the snapshot's (ISO text for dates and times, a dict for numbers).

    ``masked`` renders full numbers masked: the copy of a body that is kept or shown.
    """
    if spec.constant is not None:
        return spec.constant
    if value is None:
        return None
    if field_type == "number":
        if spec.number != "full" or masked:
            return value["masked"]
        if reveal is None:
            raise MappingError("the full number needs the server key (GUARDPOST_KEY_FILE)")
        if not value.get("encrypted"):
            raise MappingError("no full number is stored for this record (only its masked form)")
        return reveal(value["encrypted"])
    if field_type == "date":
        day = date.fromisoformat(value)
        return day.strftime(spec.format) if spec.format else day.isoformat()
    if field_type == "datetime":
        moment = datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(ZoneInfo(spec.timezone or default_zone))
        return moment.strftime(spec.format) if spec.format else moment.isoformat()
    if spec.map is not None:
        key = _text_key(value)
        if key in spec.map:
            return spec.map[key]
        if spec.default is not None:
            return spec.default
        raise MappingError(f"value {key!r} is not in the map; add it or set a default")
    return value


def render_record(
    kind: str,
    mapping: KindMapping,
    fields: Mapping[str, Any],
    default_zone: str,
    reveal: Reveal | None = None,
    *,
    masked: bool = False,
) -> dict[str, Any]:
    """Every item of the mapping for one record, in the mapping's order."""
    types = FIELDS[kind]
    items: dict[str, Any] = {}
    for item, spec in mapping.specs().items():
        field_type = types[spec.field] if spec.field is not None else "text"
        value = fields.get(spec.field) if spec.field is not None else None
        try:
            items[item] = render_value(spec, field_type, value, default_zone, reveal, masked)
        except MappingError as exc:
            raise MappingError(f"{kind} item {item} (from {spec.field}): {exc}") from None
    return items


def key_items(kind: str, mapping: KindMapping) -> list[str]:
    """The items a tombstone (deleted record) carries: those naming the record, not describing it."""
    naming = {
        "guards": {"guard_id", "id_number"},
        "assignments": {"assignment_id", "guard_id", "id_number", "site_id"},
        "duty_logs": {"guard_id", "id_number", "site_id", "shift_id", "date"},
        "findings": {"finding_id"},
    }[kind]
    return [item for item, spec in mapping.specs().items() if spec.constant is not None or spec.field in naming]
