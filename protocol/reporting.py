"""Wire contract of the provincial upload: batch envelope, signature headers and the receipt a receiver answers."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from protocol.signing import canonical_json

BATCH_HEADER = "X-Report-Batch-Id"
TIMESTAMP_HEADER = "X-Report-Timestamp"
SENDER_HEADER = "X-Report-Sender"
SIGNATURE_HEADER = "X-Report-Signature"
# A captured request can be replayed for at most this long; the batch id makes a replay a no-op anyway.
MAX_CLOCK_SKEW_S = 300
OPS = ("upsert", "delete")


def envelope(
    *,
    batch_id: str,
    dataset: str,
    province: str,
    sender_id: str,
    company: dict[str, Any] | None,
    created_at: str,
    records: list[dict[str, Any]],
) -> dict[str, Any]:
    """The body of one batch; ``records`` are ``{key, op, version, items}`` with the province's item names."""
    return {
        "batch_id": batch_id,
        "dataset": dataset,
        "province": province,
        "sender_id": sender_id,
        "company": company,
        "created_at": created_at,
        "records": records,
    }


def body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (canonical JSON: sorted keys, no spaces, UTF-8)."""
    return canonical_json(body)


def batch_signature(secret: str, timestamp: str, batch_id: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 over ``timestamp \\n batch_id \\n body``: the headers cannot be swapped."""
    message = timestamp.encode("ascii") + b"\n" + batch_id.encode("utf-8") + b"\n" + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_ok(secret: str, timestamp: str, batch_id: str, body: bytes, given: str) -> bool:
    expected = batch_signature(secret, timestamp, batch_id, body)
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace"))


def receipt(receipt_id: str, batch_id: str, accepted: int, rejected: list[dict[str, str]], **extra: Any) -> dict:
    """What a receiver answers: how many records it took, and each refused item with the reason."""
    return {"receipt_id": receipt_id, "batch_id": batch_id, "accepted": accepted, "rejected": rejected, **extra}
