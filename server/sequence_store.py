"""Sequence gaps in the database: a finding per missing range, resolved or narrowed when the events arrive."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.ingest_terminals import TerminalRow
from server.models import Finding
from server.sequence import GAP_KIND, Gap, advance, parse_gap_key, remaining

RESOLVED_BY = "ingest"


def track_sequences(
    session: Session, terminals: Mapping[str, TerminalRow], seqs_by_device: Mapping[str, Iterable[int]], now: datetime
) -> None:
    """Account for newly stored events: move each terminal's ``last_seq``, open, narrow and resolve gap findings.

    Callers hold the terminals' rows locked, so two ingest processes never judge one terminal's seqs at once.
    """
    wanted: list[tuple[TerminalRow, Gap, datetime]] = []
    older: dict[str, set[int]] = {}
    for device_id, seqs in seqs_by_device.items():
        terminal = terminals[device_id]
        last = terminal.last_seq or 0
        seqs = set(seqs)
        terminal.last_seq, gaps = advance(last, seqs)
        wanted += [(terminal, gap, now) for gap in gaps]
        if below := {s for s in seqs if s <= last}:
            older[device_id] = below  # replays after an outage, or out-of-order delivery
    if older:
        wanted += _fill(session, terminals, older, now)
    _open(session, wanted)


def _fill(
    session: Session, terminals: Mapping[str, TerminalRow], older: Mapping[str, set[int]], now: datetime
) -> list[tuple[TerminalRow, Gap, datetime]]:
    """Resolve the open gaps these seqs fall into; returns what is still missing of them."""
    still: list[tuple[TerminalRow, Gap, datetime]] = []
    query = select(Finding).where(
        Finding.kind == GAP_KIND, Finding.resolved_at.is_(None), Finding.device_id.in_(sorted(older))
    )
    for finding in session.scalars(query):
        parsed = parse_gap_key(finding.key)
        if parsed is None or parsed[0] != finding.device_id:
            continue
        device_id, gap = parsed
        parts = remaining(gap, older[device_id])
        if parts is None:
            continue
        finding.resolved_at = now
        finding.resolved_by = RESOLVED_BY
        # A narrowed gap keeps the original date: the events have been missing since then.
        still += [(terminals[device_id], part, finding.created_at) for part in parts]
    return still


def _open(session: Session, wanted: list[tuple[TerminalRow, Gap, datetime]]) -> None:
    if not wanted:
        return
    by_key = {gap.key(terminal.device_id): (terminal, gap, since) for terminal, gap, since in wanted}
    # Raising the same gap twice is a no-op (the key says so).
    known = set(session.scalars(select(Finding.key).where(Finding.key.in_(sorted(by_key)))))
    for key, (terminal, gap, since) in by_key.items():
        if key in known:
            continue
        session.add(
            Finding(
                key=key,
                kind=GAP_KIND,
                severity="warning",
                site_id=terminal.site_id,
                device_id=terminal.device_id,
                detail=gap.detail(terminal.device_id),
                created_at=since,
            )
        )
