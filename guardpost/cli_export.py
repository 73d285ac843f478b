"""``guardpost export attendance``: a monthly attendance export written straight to a file, with a progress bar."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from guardpost.cli import CliError, db_flags, session_for, settings_for
from guardpost.cli_import import ProgressBar


def _request(args: argparse.Namespace, out: Path):
    from server.exports.request import ExportRequestError, parse_request

    fmt = args.format or out.suffix.lstrip(".").lower()
    if fmt not in ("xlsx", "csv"):
        raise CliError(f"give --format xlsx or csv (the file name {out.name} does not say which)")
    if out.suffix.lower() != f".{fmt}":
        raise CliError(f"--out {out} does not end in .{fmt}; name the file for its format")
    chosen = {"company": args.company, "site": args.site, "guard": args.guard}
    data = {"month": args.month, "format": fmt, "locale": args.locale or settings_for(args).default_locale}
    try:
        return parse_request(data | {k: v for k, v in chosen.items() if v})
    except ExportRequestError as exc:
        raise CliError(str(exc)) from None


def _scope(session, user_name: str | None):
    from server.scope import Scope, scope_for
    from server.users import get_user

    if user_name is None:
        return Scope(role="admin", user_name="guardpost export")  # whoever can run this can read the database
    user = get_user(session, user_name)
    if user.disabled:
        raise CliError(f"user {user_name} is disabled")
    return scope_for(user)


def _check_exists(session, request) -> None:
    from server.models import Company, Guard, Site

    for name, model in (("company", Company), ("site", Site), ("guard", Guard)):
        value = getattr(request, name)
        if value and session.get(model, value) is None:
            raise CliError(f"no {name} {value} in the database")


def cmd_export_attendance(args: argparse.Namespace) -> int:
    from server.exports.access import refusal
    from server.exports.generate import totals_path, write_export

    out = Path(args.out)
    request = _request(args, out)
    if not out.parent.is_dir():
        raise CliError(f"folder {out.parent} does not exist")
    # Written next to the target, then renamed: a failed run never leaves half a file under the real name.
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    pairs = [(partial, out)] + ([(totals_path(partial), totals_path(out))] if request.format == "csv" else [])
    bar = ProgressBar()
    try:
        with session_for(args) as session:
            scope = _scope(session, args.user)
            _check_exists(session, request)
            reason = refusal(session, scope, request)
            if reason is not None:
                raise CliError(reason)
            result = write_export(session, scope, request, partial, progress=bar)
        bar.finish()
        for source, target in pairs:
            os.replace(source, target)
    finally:
        bar.finish()
        for source, _target in pairs:
            source.unlink(missing_ok=True)
    files = " and ".join(str(target) for _source, target in pairs)
    print(f"wrote {result.rows} rows for {result.guards} guards ({request.month}, {request.subject}) to {files}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="exports").add_subparsers(dest="kind", required=True)
    p = export.add_parser(
        "attendance",
        help="monthly attendance: a row per guard and day, and totals per guard",
        description="XLSX: sheets Attendance and Totals. CSV: FILE holds the rows, FILE with .totals.csv the totals. "
        "Resident ID numbers are masked; text a spreadsheet could run as a formula is prefixed with a quote.",
    )
    p.add_argument("--month", required=True, help="YYYY-MM")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--company", help="only the sites this company guards")
    which.add_argument("--site", help="only this site")
    which.add_argument("--guard", help="only this guard")
    p.add_argument("--format", choices=["xlsx", "csv"], help="default: from the --out file name")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write (mode 600; replaced if it exists)")
    p.add_argument("--locale", choices=["zh", "en"], help="language of headers and statuses (default GUARDPOST_LOCALE)")
    p.add_argument("--user", help="export only what this user may see (default: everything)")
    db_flags(p)
    p.set_defaults(func=cmd_export_attendance)
