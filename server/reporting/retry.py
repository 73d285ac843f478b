"""What an answer means for a batch and when to try again: pure functions, no clock and no randomness inside."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from server.reporting.config import RetryConfig

# Client errors that say "later", not "wrong": the request may succeed unchanged.
TRANSIENT_4XX = (408, 425, 429)


def backoff_delay(attempt: int, retry: RetryConfig, rand: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based); ``rand`` in [0, 1) takes off up to ``jitter``.

    Jitter spreads the retries of many batches (and many senders) that failed together, so a province
    coming back up is not hit by all of them in the same second.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= rand < 1.0:
        raise ValueError("rand must be in [0, 1)")
    # min() before the power would overflow: cap the exponent where it already exceeds the maximum.
    exponent = min(attempt - 1, 200)
    raw = min(retry.max_delay_s, retry.base_delay_s * retry.factor**exponent)
    return raw * (1.0 - retry.jitter * rand)


def schedule(retry: RetryConfig, rand: float = 0.0) -> list[float]:
    """The waits between every attempt, for docs and status output."""
    return [backoff_delay(n, retry, rand) for n in range(1, retry.max_attempts)]


@dataclass(frozen=True)
class Verdict:
    """The batch's next status, and when to try again (seconds) for ``pending``."""

    status: str
    delay_s: float | None = None


def verdict(http_status: int | None, attempts: int, retry: RetryConfig, rand: float, retry_after_s: float | None):
    """``http_status`` None means no answer (connection refused, timeout, reset)."""
    if http_status is not None and 200 <= http_status < 300:
        return Verdict("accepted")
    transient = http_status is None or http_status >= 500 or http_status in TRANSIENT_4XX
    if not transient:
        # Other 4xx (and redirects, which a province's upload URL should not answer) need a fix, not a retry.
        return Verdict("refused")
    if attempts >= retry.max_attempts:
        return Verdict("failed")
    delay = backoff_delay(attempts, retry, rand)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry.max_delay_s))
    return Verdict("pending", delay)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from APIs and ignored)."""
    if not value or not value.strip().isdigit():
        return None
    return float(value.strip())


MAX_EXCERPT = 500


def read_receipt(body: bytes) -> dict[str, Any] | None:
    """The receiver's JSON answer, if it is a JSON object; anything else is kept only as an excerpt."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def excerpt(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= MAX_EXCERPT else text[:MAX_EXCERPT] + "..."


def refusal_text(http_status: int, receipt: dict[str, Any] | None, body: bytes) -> str:
    """One line for the page: the status and the receiver's reasons."""
    reasons = []
    if receipt is not None:
        for entry in (receipt.get("rejected") or [])[:5]:
            if isinstance(entry, dict):
                reasons.append(f"{entry.get('item')}: {entry.get('reason')}")
        if not reasons and isinstance(receipt.get("error"), str):
            reasons.append(receipt["error"])
    detail = "; ".join(reasons) if reasons else excerpt(body)
    return f"HTTP {http_status}: {detail}" if detail else f"HTTP {http_status}"
