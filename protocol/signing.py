"""Canonical JSON and HMAC-SHA256 signatures over event payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

# One encoder for every call: json.dumps with these options would build a new one each time.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(obj: Any) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8, non-ASCII kept."""
    return _CANONICAL.encode(obj).encode("utf-8")


def sign(payload: dict[str, Any], secret: str) -> str:
    """Lowercase hex HMAC-SHA256 over the canonical JSON of ``payload`` without ``sig``."""
    unsigned = {k: v for k, v in payload.items() if k != "sig"}
    return hmac.new(secret.encode("utf-8"), canonical_json(unsigned), hashlib.sha256).hexdigest()


def verify(payload: dict[str, Any], secret: str) -> bool:
    """True when ``payload['sig']`` is the signature ``secret`` gives; constant-time compare."""
    given = payload.get("sig")
    if not isinstance(given, str):
        return False
    try:
        expected = sign(payload, secret)
    except UnicodeEncodeError:
        return False  # a lone surrogate (JSON allows "\ud800"): no UTF-8 was signed, so no terminal signed it
    return hmac.compare_digest(given, expected)


def request_signature(secret: str, method: str, path: str, timestamp: str) -> str:
    """Signature a terminal puts on its HTTP requests to the server (gallery sync)."""
    message = f"{method.upper()}\n{path}\n{timestamp}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
