"""Clock checks in the database: date unsynced events from same-boot references, retroactively too, flag the rest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from server.clock_correction import (
    CLOCK_KIND,
    CORRECTED,
    SYNCED,
    UNVERIFIED,
    ClockReference,
    ClockVerdict,
    finding_detail,
    finding_key,
    judge,
    naive_utc,
    reference,
)
from server.ingest_rules import AcceptedEvent, HeartbeatUpdate
from server.ingest_terminals import TerminalRow
from server.models import Event, Finding
from server.sql_batch import among, listed

RESOLVED_BY = "ingest"
Boot = tuple[str, str]  # (device_id, boot_id)


def check_clocks(
    session: Session,
    terminals: Mapping[str, TerminalRow],
    events: Sequence[tuple[AcceptedEvent, datetime]],
    heartbeats: Sequence[HeartbeatUpdate],
    now: datetime,
) -> dict[int, ClockVerdict]:
    """Verdicts, by position, for the (event, received_at) pairs captured with an unsynced clock.

    Synced events keep their own time and get no verdict. Stored events of a boot this batch brings a
    reference for are re-dated, and boots left unverified are flagged.
    """
    # Synced moments this batch brings, per boot; turned into references only where a boot needs them.
    moments: dict[Boot, list[tuple[datetime, float]]] = defaultdict(list)
    for beat in heartbeats:
        hb = beat.heartbeat
        if hb.clock_synced and hb.boot_id and hb.monotonic_s is not None:
            moments[(beat.device_id, hb.boot_id)].append((hb.sent_at, hb.monotonic_s))
    unsynced: list[int] = []
    for i, (accepted, _received) in enumerate(events):
        e = accepted.event
        if not e.clock_synced:
            unsynced.append(i)
        elif e.boot_id and e.monotonic_s is not None:
            moments[(accepted.device_id, e.boot_id)].append((e.captured_at, e.monotonic_s))
    needing: set[Any] = {(events[i][0].device_id, events[i][0].event.boot_id) for i in unsynced}
    keys = {finding_key(*boot): boot for boot in needing | moments.keys()}
    if not keys:
        return {}
    findings = _findings(session, keys)
    open_boots = {keys[k] for k, f in findings.items() if f.resolved_at is None}
    refs: dict[Boot, list[ClockReference]] = {}
    for boot in needing | (open_boots & moments.keys()):
        refs[boot] = _references(terminals.get(boot[0]), boot, moments.get(boot, ()))
    verdicts: dict[int, ClockVerdict] = {}
    flagged: dict[Boot, AcceptedEvent] = {}
    for i in unsynced:
        accepted, received = events[i]
        boot = (accepted.device_id, accepted.event.boot_id)
        if boot[1] and not refs[boot] and boot not in open_boots:
            # No reference in hand and none known to be missing: an earlier one may sit in stored events.
            refs[boot] = [r for r in [_stored_reference(session, *boot)] if r is not None]
            open_boots.add(boot)  # look once per batch
        verdicts[i] = judge(**_facts(accepted, received), refs=refs[boot])
        if verdicts[i].status == UNVERIFIED:
            flagged.setdefault(boot, accepted)
    for boot in open_boots & moments.keys():
        finding = findings.get(finding_key(*boot))
        if finding is None or finding.resolved_at is not None:
            continue
        if _correct_stored(session, boot, refs[boot]) == 0 and boot not in flagged:
            finding.resolved_at = now
            finding.resolved_by = RESOLVED_BY
    for boot, accepted in flagged.items():
        _flag(session, findings.get(finding_key(*boot)), boot, accepted, now)
    return verdicts


def _findings(session: Session, keys: Iterable[str]) -> dict[str, Finding]:
    """The clock findings with these keys; one Core read, ORM objects only for the few that exist."""
    session.flush()  # Core reads do not autoflush
    connection = session.connection()
    dialect = connection.dialect.name
    found = list(connection.scalars(_keys_query(dialect), {"keys": listed(keys, dialect)}))
    if not found:
        return {}
    return {f.key: f for f in session.scalars(select(Finding).where(Finding.key.in_(found)))}


@cache
def _keys_query(dialect: str) -> Select:
    return select(Finding.key).where(among(Finding.key, "keys", dialect))


def _references(
    terminal: TerminalRow | None, boot: Boot, moments: Iterable[tuple[datetime, float]]
) -> list[ClockReference]:
    """This batch's synced moments of the boot, and the terminal's last heartbeat if it dates the same boot."""
    device_id, boot_id = boot
    if not boot_id:
        return []
    refs = [ClockReference(boot_id, naive_utc(wall), float(mono)) for wall, mono in moments]
    stored = _heartbeat_reference(terminal.heartbeat) if terminal is not None else None
    if stored is not None and stored.boot_id == boot_id:
        refs.append(stored)
    return refs


def _facts(accepted: AcceptedEvent, received_at: datetime) -> dict[str, Any]:
    e = accepted.event
    return {
        "captured_at": e.captured_at,
        "clock_synced": e.clock_synced,
        "boot_id": e.boot_id,
        "monotonic_s": e.monotonic_s,
        "received_at": received_at,
    }


def _heartbeat_reference(data: Any) -> ClockReference | None:
    """The terminal's last heartbeat, as stored, dates the rest of its current boot."""
    if not isinstance(data, dict) or not isinstance(data.get("sent_at"), str):
        return None
    try:
        sent_at = datetime.fromisoformat(data["sent_at"])
        return reference(
            clock_synced=data.get("clock_synced") is True,
            wall=sent_at,
            boot_id=data.get("boot_id"),
            monotonic_s=data.get("monotonic_s"),
        )
    except (TypeError, ValueError):
        return None


def _same_boot(device_id: str, boot_id: str):
    return (Event.device_id == device_id, Event.boot_id == boot_id)


def _stored_reference(session: Session, device_id: str, boot_id: str) -> ClockReference | None:
    """A stored event of that boot whose time is known (synced or corrected) is a reference too."""
    row = session.execute(
        select(Event.corrected_at, Event.monotonic_s)
        .where(*_same_boot(device_id, boot_id), Event.clock_status.in_((SYNCED, CORRECTED)))
        .order_by(Event.id.desc())
        .limit(1)
    ).first()
    if row is None or row.corrected_at is None:
        return None
    return reference(clock_synced=True, wall=row.corrected_at, boot_id=boot_id, monotonic_s=row.monotonic_s)


def _correct_stored(session: Session, boot: Boot, refs: Iterable[ClockReference]) -> int:
    """Re-date the boot's stored unverified events; returns how many stay unverified."""
    rows = session.execute(
        select(Event.id, Event.captured_at, Event.received_at, Event.monotonic_s).where(
            *_same_boot(*boot), Event.clock_status == UNVERIFIED
        )
    ).all()
    refs = list(refs)
    changes = []
    for row in rows:
        verdict = judge(
            captured_at=row.captured_at,
            clock_synced=False,
            boot_id=boot[1],
            monotonic_s=row.monotonic_s,
            received_at=row.received_at,
            refs=refs,
        )
        if verdict.status == CORRECTED:
            changes.append({"id": row.id, "clock_status": CORRECTED, "corrected_at": verdict.corrected_at})
    if changes:
        session.execute(update(Event), changes)
    return len(rows) - len(changes)


def _flag(session: Session, finding: Finding | None, boot: Boot, accepted: AcceptedEvent, now: datetime) -> None:
    """One clock finding per terminal boot, reopened if more unverifiable events of it turn up."""
    device_id, boot_id = boot
    if finding is not None:
        finding.resolved_at = None
        finding.resolved_by = None
        return
    session.add(
        Finding(
            key=finding_key(device_id, boot_id),
            kind=CLOCK_KIND,
            severity="warning",
            site_id=accepted.site_id,
            device_id=device_id,
            event_id=accepted.event_id,
            detail=finding_detail(device_id, boot_id),
            created_at=now,
        )
    )
