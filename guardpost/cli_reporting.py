"""``guardpost reporting``: the provincial upload (run, status, resend, check) and the reference receiver."""

from __future__ import annotations

import argparse
import getpass
import json
import threading
from pathlib import Path

from guardpost.cli import EXIT_RUNTIME, CliError, _stop_on_signals, db_flags, session_for, settings_for


def _config_path(args: argparse.Namespace) -> Path:
    from server.reporting.config import CONFIG_ENV, config_path

    path = config_path(args.config)
    if path is None:
        raise CliError(f"no reporting config: pass --config FILE or set {CONFIG_ENV} (see docs/reporting.md)")
    return path


def cmd_run(args: argparse.Namespace) -> int:
    from server.db import make_engine, make_sessionmaker
    from server.reporting.runner import Reporter, Watcher, load, run_loop

    path = _config_path(args)
    settings = settings_for(args)
    config, secret, cipher = load(path, settings.key_file)
    sessions = make_sessionmaker(make_engine(settings.db_url))
    reporter = Reporter(sessions, config, secret, cipher, echo=lambda line: print(line, flush=True))
    kinds = ", ".join(config.mapping)
    print(f"GuardPost reporting of {kinds} for province {config.province} to {config.endpoint}", flush=True)
    if args.once:
        done = reporter.run_once()
        sent = {s.status for s in done.sent}
        built = sum(len(b.batch_ids) for b in done.built)
        print(f"round done: {built} batch(es) built, {len(done.sent)} sent", flush=True)
        return 1 if sent & {"refused", "failed"} else 0
    run_loop(reporter, _stop_on_signals(), Watcher(path, settings.key_file))
    return 0


def _batch_json(batch) -> dict:
    from server.reporting.views import batch_summary

    return batch_summary(batch)


def cmd_status(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.reporting.outbox import status_counts
    from server.reporting.tables import ReportBatch, ReportCursor

    with session_for(args) as session:
        counts = status_counts(session)
        cursors = list(session.scalars(select(ReportCursor).order_by(ReportCursor.kind)))
        query = select(ReportBatch).order_by(ReportBatch.id.desc()).limit(args.limit)
        if args.status:
            query = query.where(ReportBatch.status == args.status)
        batches = list(session.scalars(query))
    if args.json:
        print(
            json.dumps(
                {
                    "counts": counts,
                    "kinds": [
                        {"kind": c.kind, "built_at": c.built_at and c.built_at.isoformat(), "scanned": c.scanned}
                        for c in cursors
                    ],
                    "batches": [_batch_json(b) for b in batches],
                },
                ensure_ascii=False,
            )
        )
        return 0
    print("batches: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"))
    for c in cursors:
        when = c.built_at.strftime("%Y-%m-%d %H:%M:%S UTC") if c.built_at else "never"
        figures = f"{c.scanned} record(s), {c.new} new, {c.changed} changed, {c.deleted} gone"
        print(f"  {c.kind}: last checked {when}: {figures}")
    for b in batches:
        line = f"{b.id:>6}  {b.status:<10} {b.kind:<12} {b.company_id or '-':<16} {b.record_count:>5} rec"
        line += f"  try {b.attempts}"
        if b.receipt_id:
            line += f"  receipt {b.receipt_id}"
        if b.last_error:
            line += f"  {b.last_error}"
        print(line)
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    from server.reporting.outbox import ResendError, find, resend

    with session_for(args) as session:
        batch = find(session, args.batch)
        if batch is None:
            raise CliError(f"no batch {args.batch}; see 'guardpost reporting status'")
        try:
            resend(session, batch, args.by or f"cli:{getpass.getuser()}")
        except ResendError as exc:
            raise CliError(str(exc)) from None
        session.commit()
        print(f"batch {batch.id} ({batch.batch_id}) queued again; the running reporter sends it within seconds")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from server.reporting.retry import schedule
    from server.reporting.runner import load

    path = _config_path(args)
    config, _secret, _cipher = load(path, settings_for(args).key_file)
    print(f"{path}: valid; province {config.province}, sender {config.sender_id}, endpoint {config.endpoint}")
    for kind, mapping in config.mapping.items():
        print(f"  {kind} -> {config.dataset(kind)}: {len(mapping.items)} item(s)")
    waits = ", ".join(f"{s:.0f}" for s in schedule(config.retry))
    print(f"  retries: up to {config.retry.max_attempts} attempts, waiting about {waits} s (less jitter)")
    return 0


def cmd_receiver(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from server.reporting.receiver import Store, create_receiver, load_items, read_secret_file

    secret = read_secret_file(Path(args.secret_file))
    items = load_items(Path(args.items) if args.items else None)
    if args.province:
        from server.provinces import normalise_province

        items = type(items)(normalise_province(args.province), items.required)
    app = create_receiver(
        secret,
        items,
        Store(Path(args.store) if args.store else None),
        fail_first=args.fail_first,
        hang_first=args.hang_first,
        hang_s=args.hang_seconds,
    )
    try:
        http = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", EXIT_RUNTIME) from None
    stop = _stop_on_signals()
    threading.Thread(target=http.serve_forever, name="receiver", daemon=True).start()
    where = f"storing in {args.store}" if args.store else "in memory only"
    print(f"reference receiver on http://{args.host}:{http.server_port}/ ({where})", flush=True)
    stop.wait()
    http.shutdown()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    reporting = sub.add_parser("reporting", help="upload to the provincial supervision system").add_subparsers(
        dest="action", required=True
    )
    p = reporting.add_parser("run", help="build and send batches (a loop; --once for one round)")
    p.add_argument("--config", help="reporting config TOML (env GUARDPOST_REPORTING_CONFIG)")
    p.add_argument("--once", action="store_true", help="one round, then exit (1 if a batch was refused or failed)")
    db_flags(p)
    p.set_defaults(func=cmd_run)

    p = reporting.add_parser("status", help="batches by status, the last check per kind, recent batches")
    p.add_argument("--status", choices=["pending", "sending", "accepted", "refused", "failed", "superseded"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    db_flags(p)
    p.set_defaults(func=cmd_status)

    p = reporting.add_parser("resend", help="queue a refused or failed batch again (after fixing the cause)")
    p.add_argument("batch", help="batch number (from status) or batch id")
    p.add_argument("--by", help="who asks (kept with the batch; default cli:<login>)")
    db_flags(p)
    p.set_defaults(func=cmd_resend)

    p = reporting.add_parser("check", help="validate the config and its secret; show the retry schedule")
    p.add_argument("--config", help="reporting config TOML (env GUARDPOST_REPORTING_CONFIG)")
    p.set_defaults(func=cmd_check)

    p = reporting.add_parser("receiver", help="reference receiver (for tests and integrators)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--secret-file", required=True, help="the shared signing secret")
    p.add_argument("--store", help="folder for accepted batches (default: memory only)")
    p.add_argument("--items", help="the province's data-item list (TOML); default: the example list")
    p.add_argument("--province", help="refuse batches for another province")
    p.add_argument("--fail-first", type=int, default=0, metavar="N", help="answer 503 to the first N uploads")
    p.add_argument("--hang-first", type=int, default=0, metavar="N", help="store the first N, then withhold the answer")
    p.add_argument("--hang-seconds", type=float, default=60.0)
    p.set_defaults(func=cmd_receiver)
