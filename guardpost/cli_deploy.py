"""Production subcommands: the background monitor on its own, and backup / restore of the database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLAlchemy URL (env GUARDPOST_DB; default sqlite:///var/guardpost.db)")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_monitor(args: argparse.Namespace) -> int:
    from guardpost.cli import _stop_on_signals, settings_for
    from server.db import make_engine, make_sessionmaker
    from server.exports.settings import ExportSettings
    from server.exports.worker import ExportWorker
    from server.monitor import Monitor

    engine = make_engine(settings_for(args).db_url)
    monitor = Monitor(make_sessionmaker(engine), every_s=args.every)
    stop = _stop_on_signals()
    monitor.start()
    # Under gunicorn the web workers only queue exports; this process makes the files.
    exports = None if args.no_exports else ExportWorker(make_sessionmaker(engine), ExportSettings.from_env()).start()
    work = "duty recomputation, terminal watch and audit sealing" + ("" if exports is None else ", export files")
    print(f"GuardPost monitor: {work} every {args.every:g} s", flush=True)
    stop.wait()
    monitor.stop()
    if exports is not None:
        exports.stop()
    engine.dispose()
    return 0


def _fail(exc) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return exc.code


def cmd_backup(args: argparse.Namespace) -> int:
    from guardpost.cli import settings_for
    from server.backup import BackupError, backup

    try:
        summary = backup(settings_for(args).db_url, Path(args.out), _progress)
    except BackupError as exc:
        return _fail(exc)
    print(f"wrote {args.out} (mode 600): {summary.line()}")
    print("the template key is not in it: back up GUARDPOST_KEY_FILE separately, never next to this file")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    import os

    from guardpost.cli import settings_for
    from server.backup import BackupError, check_templates, restore
    from server.config import ConfigError
    from server.crypto import KEY_ENV, KEY_FILE_ENV, load_cipher

    settings = settings_for(args)
    try:
        summary = restore(settings.db_url, Path(args.file), replace=args.replace, progress=_progress)
    except BackupError as exc:
        return _fail(exc)
    print(f"restored {args.file}: {summary.line()}")
    if summary.face_templates == 0:
        return 0
    if not (settings.key_file or os.environ.get(KEY_FILE_ENV) or os.environ.get(KEY_ENV)):
        print(f"templates not checked: set {KEY_FILE_ENV} to the key they were enrolled with", file=sys.stderr)
        return 0
    try:
        checked = check_templates(settings.db_url, load_cipher(settings.key_file))
    except ConfigError as exc:
        print(f"error: restored, but {exc}; restore the key file that was in use when the backup was taken")
        return 3
    print(f"face templates decrypt with the configured key ({checked} checked)")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "monitor", help="duty recomputation, terminal watch, audit sealing and export files, without the web app"
    )
    _db_flag(p)
    p.add_argument("--every", type=float, default=30.0, help="seconds between rounds (default 30)")
    p.add_argument("--no-exports", action="store_true", help="make no export files here (another process does)")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("backup", help="copy the whole database to a file (SQLite backup API or pg_dump)")
    p.add_argument("--out", required=True, help="backup file to create (mode 600; never overwritten)")
    _db_flag(p)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="load a backup made by 'guardpost backup' (stop the services first)")
    p.add_argument("file")
    p.add_argument("--replace", action="store_true", help="overwrite a database that already has data")
    _db_flag(p)
    p.set_defaults(func=cmd_restore)
