"""MQTT topic builders and parsers: the only place topic strings are assembled."""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "guardpost/v1"
KINDS = ("events", "status", "acks", "heartbeat")

# Ids become topic levels, so they must not contain MQTT wildcards or separators.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicError(ValueError):
    """A topic or id that does not follow the GuardPost topic scheme."""


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise TopicError(
            f"{what} {value!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _topic(site_id: str, device_id: str, kind: str) -> str:
    return f"{ROOT}/{check_id(site_id, 'site_id')}/{check_id(device_id, 'device_id')}/{kind}"


def events_topic(site_id: str, device_id: str) -> str:
    return _topic(site_id, device_id, "events")


def status_topic(site_id: str, device_id: str) -> str:
    return _topic(site_id, device_id, "status")


def acks_topic(site_id: str, device_id: str) -> str:
    return _topic(site_id, device_id, "acks")


def heartbeat_topic(site_id: str, device_id: str) -> str:
    return _topic(site_id, device_id, "heartbeat")


def subscription(kind: str, share_group: str | None = None) -> str:
    """Wildcard filter for one kind across all terminals, optionally as an MQTT shared subscription."""
    if kind not in KINDS:
        raise TopicError(f"unknown topic kind {kind!r}; expected one of {', '.join(KINDS)}")
    pattern = f"{ROOT}/+/+/{kind}"
    return f"$share/{check_id(share_group, 'share group')}/{pattern}" if share_group else pattern


@dataclass(frozen=True)
class TopicAddress:
    site_id: str
    device_id: str
    kind: str


def parse_topic(topic: str) -> TopicAddress:
    """Split a GuardPost topic into site, device and kind, or raise TopicError."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != ROOT:
        raise TopicError(f"topic {topic!r} is not of the form {ROOT}/<site_id>/<device_id>/<kind>")
    site_id, device_id, kind = parts[2], parts[3], parts[4]
    if kind not in KINDS:
        raise TopicError(f"topic {topic!r} has unknown kind {kind!r}")
    return TopicAddress(check_id(site_id, "site_id"), check_id(device_id, "device_id"), kind)
