"""Send one batch: render the province's body, sign it, claim the batch, POST, and record the outcome."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.orm import Session

from protocol.reporting import (
    BATCH_HEADER,
    SENDER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    batch_signature,
    body_bytes,
    envelope,
)
from server.models import Company
from server.reporting import outbox
from server.reporting.config import ReportingConfig, Secret
from server.reporting.mapping import MappingError, Reveal, key_items, render_record
from server.reporting.retry import excerpt, parse_retry_after, read_receipt, refusal_text, verdict
from server.reporting.tables import ReportBatch
from server.reporting.transport import Answer, TransportError

log = logging.getLogger("guardpost.reporting")

Post = Callable[..., Answer]
LEASE_MARGIN_S = 10.0


def reveal_with(cipher: Fernet) -> Reveal:
    def reveal(token_b64: str) -> str:
        try:
            return cipher.decrypt(base64.b64decode(token_b64)).decode("ascii")
        except (InvalidToken, ValueError):
            raise MappingError("a stored number cannot be decrypted with this server key") from None

    return reveal


def render_batch(
    config: ReportingConfig,
    batch: ReportBatch,
    company: dict[str, Any] | None,
    live: set[str],
    reveal: Reveal | None,
    *,
    masked: bool = False,
) -> dict[str, Any]:
    """The body for the batch's records still live; ``masked`` gives the copy kept in the database."""
    if batch.kind not in config.mapping:
        raise MappingError(f"the config has no [mapping.{batch.kind}]; add it or stop reporting {batch.kind}")
    mapping = config.mapping[batch.kind]
    naming = set(key_items(batch.kind, mapping))
    records = []
    for record in batch.records:
        if record["key"] not in live:
            continue
        items = render_record(
            batch.kind, mapping, record["fields"] or {}, config.timezone, None if masked else reveal, masked=masked
        )
        if record["op"] == "delete":
            items = {item: value for item, value in items.items() if item in naming}
        records.append({"key": record["key"], "op": record["op"], "version": record["version"], "items": items})
    created = batch.created_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    return envelope(
        batch_id=batch.batch_id,
        dataset=config.dataset(batch.kind),
        province=batch.province,
        sender_id=batch.sender_id,
        company=company,
        created_at=created,
        records=records,
    )


@dataclass(frozen=True)
class Sent:
    """What became of one batch in this round; ``retryable`` means the endpoint looked unavailable."""

    batch_pk: int
    kind: str
    company_id: str | None
    records: int
    status: str
    detail: str
    retryable: bool = False
    retry_at: datetime | None = None

    def line(self) -> str:
        who = self.company_id or "no company"
        return f"batch {self.batch_pk} ({self.kind}, {who}, {self.records} record(s)): {self.status}" + (
            f" - {self.detail}" if self.detail else ""
        )


@dataclass
class Context:
    config: ReportingConfig
    secret: Secret
    reveal: Reveal | None
    clock: Callable[[], datetime]
    rand: Callable[[], float]
    post: Post


def _company(session: Session, company_id: str | None) -> dict[str, Any] | None:
    company = session.get(Company, company_id) if company_id else None
    if company is None:
        return None
    return {"company_id": company.company_id, "name": company.name, "credit_code": company.credit_code}


def send_one(session: Session, batch: ReportBatch, ctx: Context) -> Sent | None:
    """One attempt at one due batch; None when another sender claimed it first."""
    config, now = ctx.config, ctx.clock()

    def closed(status: str, error: str) -> Sent | None:
        if not outbox.give_up(session, batch, now, status, error):
            return None
        return Sent(batch.id, batch.kind, batch.company_id, batch.record_count, status, error)

    if batch.status == "sending" and batch.attempts >= config.retry.max_attempts:
        return closed("failed", f"attempt {batch.attempts} was interrupted and no attempts are left; re-send it")
    live = outbox.live_keys(session, batch)
    if not live:
        return closed("superseded", "every record went out again in a newer batch; nothing left to send")
    company = _company(session, batch.company_id)
    try:
        body = render_batch(config, batch, company, live, ctx.reveal)
        shown = render_batch(config, batch, company, live, None, masked=True)
    except MappingError as exc:
        return closed("refused", f"not sent: {exc}")
    raw = body_bytes(body)
    timestamp = str(int(time.time()))  # wall clock: the receiver checks it against its own
    signature = batch_signature(ctx.secret.reveal(), timestamp, batch.batch_id, raw)
    lease = config.timeouts.connect_s + config.timeouts.read_s + LEASE_MARGIN_S
    sha = hashlib.sha256(raw).hexdigest()
    if not outbox.claim(session, batch, now, lease, payload=shown, payload_sha256=sha, signature=signature):
        return None
    attempts = batch.attempts + 1
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        BATCH_HEADER: batch.batch_id,
        TIMESTAMP_HEADER: timestamp,
        SENDER_HEADER: batch.sender_id,
        SIGNATURE_HEADER: signature,
    }
    try:
        answer = ctx.post(
            config.endpoint, raw, headers, config.timeouts.connect_s, config.timeouts.read_s, config.ca_file
        )
    except TransportError as exc:
        answer, problem = None, str(exc)
    status_code = answer.status if answer is not None else None
    retry_after = parse_retry_after(answer.retry_after) if answer is not None else None
    outcome = verdict(status_code, attempts, config.retry, ctx.rand(), retry_after)
    receipt = read_receipt(answer.body) if answer is not None else None
    values: dict[str, Any] = {"next_attempt_at": None}
    if outcome.status == "accepted":
        receipt = receipt if receipt is not None else {"raw": excerpt(answer.body)}
        values |= {"receipt": receipt, "receipt_id": _receipt_id(receipt), "last_error": None}
        rejected = receipt.get("rejected") or []
        detail = f"receipt {values['receipt_id'] or '(none)'}"
        detail += f", {len(rejected)} item(s) rejected" if rejected else ""
        # The province had it already (an earlier attempt arrived but its answer was lost): the same receipt.
        detail += " (already received from an earlier attempt)" if receipt.get("duplicate") else ""
    else:
        if answer is not None:
            problem = refusal_text(answer.status, receipt, answer.body)
            values["receipt"] = receipt
        if outcome.status == "pending":
            values["next_attempt_at"] = now + timedelta(seconds=outcome.delay_s or 0.0)
            detail = f"{problem}; attempt {attempts} of {config.retry.max_attempts}, next in {outcome.delay_s:.1f} s"
        elif outcome.status == "failed":
            detail = f"{problem}; gave up after {attempts} attempt(s)"
        else:
            detail = problem
        values["last_error"] = detail
    if not outbox.finish(session, batch.id, attempts, ctx.clock(), outcome.status, **values):
        log.warning("batch %s: another sender took it over while this attempt ran; its outcome is dropped", batch.id)
        return None
    retryable = outcome.status in ("pending", "failed")
    retry_at = values["next_attempt_at"]
    return Sent(batch.id, batch.kind, batch.company_id, batch.record_count, outcome.status, detail, retryable, retry_at)


def _receipt_id(receipt: dict[str, Any]) -> str | None:
    value = receipt.get("receipt_id")
    return str(value)[:128] if value is not None else None
