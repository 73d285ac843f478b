"""``guardpost duty ...``: import shifts and rosters, recompute duty logs, correct a record, list a day."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from guardpost.cli import CliError, db_flags, session_for


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text; save it as CSV UTF-8") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not a date like 2026-04-01") from None


def cmd_import(args: argparse.Namespace) -> int:
    from server.duty.service import ImportRejected, import_roster, import_shifts

    text = _read(args.file)
    with session_for(args) as session:
        try:
            count = (import_shifts if args.kind == "shifts" else import_roster)(session, text)
        except ImportRejected as exc:
            session.rollback()
            for line, message in exc.errors:
                print(f"{args.file}:{line}: {message}", file=sys.stderr)
            raise CliError(f"{len(exc.errors)} bad row(s) in {args.file}; nothing was imported") from None
        session.commit()
    print(f"imported {count} {args.kind} row(s) from {args.file}")
    return 0


def cmd_recompute(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.duty.service import now_utc, recompute, recompute_dirty
    from server.duty.tables import ShiftRow

    if not args.dirty and not args.first:
        raise CliError("give the days with --from DATE [--to DATE], or --dirty for the queued ones")
    with session_for(args) as session:
        if args.dirty:
            done = recompute_dirty(session, now_utc())
        else:
            first, last = _day(args.first), _day(args.last or args.first)
            sites = args.site or sorted(set(session.scalars(select(ShiftRow.site_id))))
            done = recompute(session, sites, first, last, now_utc())
        session.commit()
    if done is None:
        print("nothing queued for recomputation")
    else:
        print(
            f"{done.records} duty record(s); "
            f"{done.findings_raised} finding(s) raised, {done.findings_resolved} resolved"
        )
    return 0


def cmd_correct(args: argparse.Namespace) -> int:
    from server.duty.service import correct

    with session_for(args) as session:
        c = correct(
            session,
            guard_id=args.guard_id,
            shift_id=args.shift_id,
            day=_day(args.date),
            field=args.field,
            value=args.value,
            reason=args.reason,
            by=args.by,
        )
        session.commit()
    print(f"corrected {c.field} of {c.guard_id} on {c.date} ({c.shift_id}): {c.old_value} -> {c.new_value}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.duty.tables import DutyRecordRow

    query = select(DutyRecordRow).where(DutyRecordRow.date == _day(args.date))
    if args.site:
        query = query.where(DutyRecordRow.site_id == args.site)
    with session_for(args) as session:
        rows = session.scalars(query.order_by(DutyRecordRow.site_id, DutyRecordRow.shift_id, DutyRecordRow.guard_id))
        print(f"{'site':<14} {'shift':<18} {'guard':<14} {'status':<22} {'worked':>6} {'late':>5} {'overtime':>8}")
        for r in rows:
            status = r.status + (" (corrected)" if r.corrected else "")
            print(
                f"{r.site_id:<14} {r.shift_id or '-':<18} {r.guard_id:<14} {status:<22} "
                f"{r.minutes_worked:>6} {r.late_minutes:>5} {r.overtime_minutes:>8}"
            )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    duty = sub.add_parser("duty", help="shifts, rosters and duty logs").add_subparsers(dest="action", required=True)
    for kind, columns in (
        (
            "shifts",
            "shift_id,post_id,site_id,name,start,end,checkin_window_min,late_grace_min,"
            "early_leave_grace_min,patrol_interval_min,tz",
        ),
        ("roster", "date,shift_id,guard_id"),
    ):
        p = duty.add_parser(f"import-{kind}", help=f"import {kind} from CSV: all rows or none", description=columns)
        p.add_argument("file")
        db_flags(p)
        p.set_defaults(func=cmd_import, kind=kind)
    p = duty.add_parser("recompute", help="rebuild duty logs from the stored events")
    p.add_argument("--from", dest="first", help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", help="last day (default: --from)")
    p.add_argument("--site", action="append", help="only this site (repeatable)")
    p.add_argument("--dirty", action="store_true", help="only the days queued by late events and imports")
    db_flags(p)
    p.set_defaults(func=cmd_recompute)
    p = duty.add_parser("correct", help="correct one field of a duty record (kept with who, when and why)")
    p.add_argument("guard_id")
    p.add_argument("shift_id")
    p.add_argument("date")
    p.add_argument("--field", required=True, choices=["status", "first_in", "last_out", "minutes_worked"])
    p.add_argument("--value", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, help="who makes the correction")
    db_flags(p)
    p.set_defaults(func=cmd_correct)
    p = duty.add_parser("show", help="the duty log of one day")
    p.add_argument("date")
    p.add_argument("--site")
    db_flags(p)
    p.set_defaults(func=cmd_show)
