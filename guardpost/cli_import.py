"""``guardpost import guards|assignments FILE``: all-or-nothing bulk import with a progress bar and an error report."""

from __future__ import annotations

import argparse
import csv
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from guardpost.cli import CliError, db_flags, session_for, settings_for
from server.import_fields import RowError


class ProgressBar:
    """A one-line text bar on a terminal, redrawn only when the percentage changes; silent when not a terminal."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.shown = -1
        self.open = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        percent = min(100, done * 100 // total)
        if percent == self.shown and done != total:
            return
        self.shown = percent
        filled = self.width * percent // 100
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {percent:3d}% {done}/{total}")
        self.stream.flush()
        self.open = True

    def finish(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _width(text: str) -> int:
    # Chinese characters take two columns on a terminal.
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def error_table(errors: Sequence[RowError]) -> str:
    """The report as an aligned text table: line, column, message."""
    rows = [("line", "column", "message")] + [(str(e.line or ""), e.column, e.message) for e in errors]
    line_w = max(_width(r[0]) for r in rows)
    column_w = max(_width(r[1]) for r in rows)
    return "\n".join(f"{_pad(a, line_w)}  {_pad(b, column_w)}  {c}".rstrip() for a, b, c in rows)


def write_error_csv(path: Path, errors: Sequence[RowError]) -> None:
    # UTF-8 with a BOM: Excel on Chinese Windows then shows the messages without garbling them.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "column", "message"])
        writer.writerows([e.line, e.column, e.message] for e in errors)


def cmd_import(args: argparse.Namespace) -> int:
    from server.import_assignments import import_assignments
    from server.importer import ImportRejected, import_guards

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    errors_path = Path(args.errors) if args.errors else None
    bar = ProgressBar()
    cipher = None
    if args.kind == "guards":
        from server.crypto import load_cipher

        cipher = load_cipher(settings_for(args).key_file)  # ID and certificate numbers are stored encrypted
    with session_for(args) as session:
        try:
            if cipher is not None:
                result = import_guards(session, cipher, path, dry_run=args.dry_run, progress=bar)
            else:
                result = import_assignments(session, path, dry_run=args.dry_run, progress=bar)
        except ImportRejected as exc:
            bar.finish()
            session.rollback()
            print(error_table(exc.errors), file=sys.stderr)
            if errors_path is not None:
                write_error_csv(errors_path, exc.errors)
                print(f"the error report is in {errors_path}", file=sys.stderr)
            print(f"error: {path.name}: {exc}", file=sys.stderr)
            return 1
        bar.finish()
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    if errors_path is not None:
        write_error_csv(errors_path, [])
    if args.dry_run:
        print(f"dry run: all {result.imported} {args.kind} in {path.name} can be imported; nothing was changed")
    else:
        print(f"imported {result.imported} {args.kind} from {path.name}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    imports = sub.add_parser("import", help="bulk import from CSV (UTF-8 or GB18030) or XLSX: all rows or none")
    kinds = imports.add_subparsers(dest="kind", required=True)
    columns = {
        "guards": "guard_id, name, id_number, employer_company_id, certificate_number, certificate_issued_on, "
        "certificate_valid_until, site_ids (separated by ;), face_consent (yes/no); needs GUARDPOST_KEY_FILE",
        "assignments": "guard_id, site_id, start, end, company_id; times without an offset are the site's local time",
    }
    for kind, text in columns.items():
        p = kinds.add_parser(kind, help=f"import {kind}", description=f"Columns: {text}.")
        p.add_argument("file", help=".csv or .xlsx, at most 20 MB and 100000 rows")
        p.add_argument("--dry-run", action="store_true", help="check every row, import nothing")
        p.add_argument("--errors", metavar="FILE", help="also write the error report to FILE as CSV")
        db_flags(p)
        p.set_defaults(func=cmd_import)
