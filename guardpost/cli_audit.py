"""``guardpost audit seal|verify``: seal committed records into the hash chain; prove a month was not altered."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from datetime import timedelta

from guardpost.cli import CliError, db_flags, session_for
from guardpost.cli_import import ProgressBar

EXIT_TAMPERED = 1
SHOWN_PER_CATEGORY = 100
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
HEADINGS = {
    "modified": "modified",
    "deleted": "deleted",
    "altered": "altered chain entries",
    "missing": "missing chain entries",
    "broken_link": "broken links",
    "unsealed": "not sealed",
    "sealed_late": "sealed late",
    "anchor": "anchor not found",
    "unknown": "unknown kinds",
}


def _plural(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in sorted(counts.items()) if n) or "no records"


def cmd_seal(args: argparse.Namespace) -> int:
    from server.audit.sealer import pending_count, seal_pending

    if not 1 <= args.batch <= 100_000:
        raise CliError("--batch must be between 1 and 100000")
    bar = ProgressBar()
    with session_for(args) as session:
        total = pending_count(session, full=args.full)
        session.commit()  # the seal's lock must open a fresh transaction
        result = seal_pending(
            session, batch=args.batch, full=args.full, progress=lambda done: bar(done, max(total, done))
        )
    bar.finish()
    head = result.head
    where = "the chain is empty" if head is None else f"chain head: entry {head.seq} {head.entry_hash}"
    print(f"sealed {_plural(result.sealed)}; {where}")
    return 0


def _arguments(args: argparse.Namespace) -> tuple[str, str | None, timedelta]:
    from server.audit.records import parse_month

    try:
        month = parse_month(args.month)
    except ValueError as exc:
        raise CliError(f"--month: {exc}") from None
    if args.anchor is not None and not HEX64.match(args.anchor):
        raise CliError("--anchor must be the 64 hex digits printed by an earlier 'guardpost audit verify'")
    if not 1 <= args.max_seal_delay <= 525_600:
        raise CliError("--max-seal-delay must be between 1 and 525600 minutes")
    return month, args.anchor, timedelta(minutes=args.max_seal_delay)


def _print_problems(problems, show_all: bool) -> None:
    shown: Counter = Counter()
    for problem in problems:
        shown[problem.category] += 1
        if show_all or shown[problem.category] <= SHOWN_PER_CATEGORY:
            print(problem.message)
    for category, n in shown.items():
        if not show_all and n > SHOWN_PER_CATEGORY:
            print(f"... and {n - SHOWN_PER_CATEGORY} more {HEADINGS.get(category, category)} (--all lists every one)")


def _as_json(report) -> str:
    anchor = report.anchor
    return json.dumps(
        {
            "month": report.month,
            "site": report.site,
            "intact": report.intact,
            "problems": [{"category": p.category, "message": p.message} for p in report.problems],
            "checked": dict(report.checked),
            "links": report.links,
            "pending": report.pending,
            "backfilled": report.backfilled,
            "anchor": None
            if anchor is None
            else {"month": anchor.month, "seq": anchor.seq, "entry_hash": anchor.entry_hash, "counts": anchor.counts},
        },
        ensure_ascii=False,
    )


def _sealed_at(session, site_id: str) -> bool:
    from sqlalchemy import exists, select

    from server.audit.tables import AuditEntry

    return bool(session.scalar(select(exists().where(AuditEntry.site_id == site_id))))


def cmd_verify(args: argparse.Namespace) -> int:
    from server.audit.verify import AnchorMismatch, verify_month
    from server.models import Site

    month, anchor, max_delay = _arguments(args)
    bar = ProgressBar()
    with session_for(args) as session:
        if args.site is not None and session.get(Site, args.site) is None and not _sealed_at(session, args.site):
            raise CliError(f"no site {args.site!r} in the database or the chain; check --site")
        try:
            report = verify_month(session, month, site=args.site, anchor=anchor, max_delay=max_delay, progress=bar)
        except AnchorMismatch as exc:
            raise CliError(str(exc)) from None
        finally:
            bar.finish()
    if args.json:
        print(_as_json(report))
        return 0 if report.intact else EXIT_TAMPERED
    scope = month + (f" at {args.site}" if args.site else "")
    _print_problems(report.problems, args.all)
    if report.intact and not report.checked:
        print(f"{scope}: no sealed records to check" + ("" if report.anchor else ", no anchor"))
    elif report.intact:
        print(f"{scope} intact: {_plural(dict(report.checked))} match the chain; {report.links} link(s) checked")
    else:
        by = Counter(p.category for p in report.problems)
        detail = ", ".join(f"{n} {HEADINGS.get(c, c)}" for c, n in by.items())
        print(f"{scope} TAMPERED: {len(report.problems)} problem(s) ({detail})")
    if report.pending:
        print(
            f"{report.pending} record(s) of {month} are waiting for the sealer (younger than {args.max_seal_delay} min)"
        )
    if report.backfilled:
        print(
            f"{report.backfilled} record(s) existed before sealing began: the chain vouches for them from then on only"
        )
    if anchor is not None and report.intact:
        print(f"matches the published anchor {anchor.lower()}")
    if report.anchor is None:
        if report.checked or not report.intact:
            print(f"nothing of {month} is sealed: no anchor")
    elif report.intact:
        print(report.anchor.line())
    else:
        print("no anchor: the chain does not vouch for this month as it stands")
    return 0 if report.intact else EXIT_TAMPERED


def add_parsers(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="tamper evidence: the hash chain of events and duty corrections")
    actions = audit.add_subparsers(dest="action", required=True)
    p = actions.add_parser("seal", help="append every committed record not yet sealed (the server does it every 30 s)")
    p.add_argument("--full", action="store_true", help="look at every row, not only the recent ones")
    p.add_argument("--batch", type=int, default=2000, help="records per transaction (default 2000)")
    db_flags(p)
    p.set_defaults(func=cmd_seal)
    p = actions.add_parser(
        "verify",
        help="recompute a month's records against the chain; exit 0 intact, 1 tampered, 2 usage error",
        description="A record's month is the local date (site time zone) of its capture, "
        "or for a duty correction the date of the duty record it corrects.",
    )
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--site", help="only this site's records (links are checked for all)")
    p.add_argument("--anchor", help="a month anchor published earlier (64 hex): it must still be in the chain")
    p.add_argument(
        "--max-seal-delay",
        type=int,
        default=15,
        metavar="MINUTES",
        help="a record not sealed this long after it arrived is reported (default 15)",
    )
    p.add_argument("--all", action="store_true", help=f"list every problem (default: {SHOWN_PER_CATEGORY} of a kind)")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    db_flags(p)
    p.set_defaults(func=cmd_verify)
