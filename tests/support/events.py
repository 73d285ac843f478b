"""Build signed test events the way a terminal does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from protocol.events import build_event


def signed_event(secret: str, site_id: str, device_id: str, seq: int = 1, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "secret": secret,
        "device_id": device_id,
        "site_id": site_id,
        "seq": seq,
        "type": "check_in",
        "method": "face",
        "guard_id": "G-1",
        "captured_at": datetime.now(UTC),
        "clock_synced": True,
        "match": {"distance": 0.31, "margin": 0.2, "frames": 3, "liveness": "not_checked"},
        "evidence_sha256": "ab" * 32,
    }
    fields.update(overrides)
    return build_event(**fields)
