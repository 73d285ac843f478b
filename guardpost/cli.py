"""The ``guardpost`` command: server, ingest, agent, broker, demo and registry administration."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import date
from pathlib import Path

EXIT_CONFIG = 2
EXIT_RUNTIME = 3


class CliError(Exception):
    """Reported as one line on stderr with an exit code, never as a traceback."""

    def __init__(self, message: str, code: int = EXIT_CONFIG):
        super().__init__(message)
        self.code = code


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def settings_for(args: argparse.Namespace):
    from server.config import ServerSettings

    return ServerSettings.from_env(
        db_url=getattr(args, "db", None),
        mqtt_url=getattr(args, "mqtt", None),
        bind=getattr(args, "bind", None),
        share_group=getattr(args, "share_group", None),
        ingest_client_id=getattr(args, "client_id", None),
    )


def session_for(args: argparse.Namespace):
    from server.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings_for(args).db_url))()


def db_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="SQLAlchemy URL (env GUARDPOST_DB; default sqlite:///var/guardpost.db)")


def cmd_server(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from server.config import parse_bind, parse_mqtt_url
    from server.crypto import load_cipher
    from server.db import make_engine, make_sessionmaker
    from server.monitor import Monitor
    from server.mqtt_ingest import IngestService
    from server.reporting.runner import start_reporting
    from server.web import create_app

    settings = settings_for(args)
    engine = make_engine(settings.db_url)
    app = create_app(settings, engine=engine, cipher=load_cipher(settings.key_file))
    host, port = parse_bind(settings.bind)
    reporting = start_reporting(engine, settings.key_file)  # only when GUARDPOST_REPORTING_CONFIG is set
    try:
        http = make_server(host, port, app, threaded=True)
    except OSError as exc:
        raise CliError(
            f"cannot listen on {host}:{port}: {exc.strerror}; set --bind or GUARDPOST_BIND", EXIT_RUNTIME
        ) from None
    ingest = None
    if not args.no_ingest:
        ingest = IngestService(settings, make_sessionmaker(engine))
        ingest.start()
    monitor = None
    if not args.no_monitor:
        monitor = Monitor(make_sessionmaker(engine))
        monitor.start()
    exports = None
    if not args.no_exports:
        from server.exports.settings import ExportSettings
        from server.exports.worker import ExportWorker

        exports = ExportWorker(make_sessionmaker(engine), ExportSettings.from_env()).attach(app).start()
    stop = _stop_on_signals()
    threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
    print(
        f"GuardPost server on http://{host}:{port}/ "
        f"(ingest {'off' if ingest is None else 'from ' + parse_mqtt_url(settings.mqtt_url).redacted()})",
        flush=True,
    )
    stop.wait()
    http.shutdown()
    for service in (ingest, monitor, exports, reporting):
        if service is not None:
            service.stop()
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from server.config import normalise_db_url
    from server.db import make_engine
    from server.migrate import current_revision

    url = normalise_db_url(settings_for(args).db_url)
    engine = make_engine(url)  # upgrades to the newest schema
    print(f"database schema at revision {current_revision(engine)} (newest)")
    engine.dispose()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from server.config import parse_mqtt_url
    from server.db import make_engine, make_sessionmaker
    from server.mqtt_ingest import IngestService, run_forever

    settings = settings_for(args)
    service = IngestService(settings, make_sessionmaker(make_engine(settings.db_url)))
    print(f"GuardPost ingest from {parse_mqtt_url(settings.mqtt_url).redacted()} into the database", flush=True)
    run_forever(service, _stop_on_signals())
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from edge_agent.agent import Agent
    from edge_agent.config import load_config
    from edge_agent.sources import SourceError

    config = load_config(args.config)
    try:
        agent = Agent(config)
    except SourceError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    print(f"GuardPost agent {config.device_id} at site {config.site_id}, broker {config.mqtt.url}", flush=True)
    return agent.run(_stop_on_signals(), exit_when_drained=args.exit_when_drained)


def cmd_broker(args: argparse.Namespace) -> int:
    from guardpost.broker import run_broker

    return run_broker(args.host, args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from guardpost.demo import run_demo

    return run_demo(Path(args.var), args.port)


def cmd_keygen(args: argparse.Namespace) -> int:
    from server.crypto import generate_key_file

    try:
        generate_key_file(Path(args.file))
    except FileExistsError:
        raise CliError(f"{args.file} already exists; refusing to overwrite a key") from None
    print(f"wrote a new key to {args.file} (mode 600); back it up: without it enrolled templates cannot be read")
    return 0


def cmd_devices_add(args: argparse.Namespace) -> int:
    from server.registry import add_device

    with session_for(args) as session:
        terminal, secret = add_device(session, args.site_id, args.device_id, post_id=args.post)
        session.commit()
    if args.json:
        print(json.dumps({"device_id": terminal.device_id, "site_id": terminal.site_id, "secret": secret}))
    else:
        print(f"registered terminal {terminal.device_id} at site {terminal.site_id}")
        print(f"secret (shown once; put it in the terminal's secret_file): {secret}")
    return 0


def cmd_guards_add(args: argparse.Namespace) -> int:
    from server.registry import Certificate, add_guard

    certificate = None
    if args.certificate:
        certificate = Certificate(args.certificate, args.certificate_issued_on, args.certificate_valid_until)
    elif args.certificate_issued_on or args.certificate_valid_until:
        raise CliError("--certificate-issued-on and --certificate-valid-until need --certificate NUMBER")
    if args.id_number == "-":
        args.id_number = sys.stdin.readline().strip()  # keeps the number out of shell history and ps
    cipher = None
    if args.id_number or certificate:
        from server.crypto import load_cipher

        cipher = load_cipher(settings_for(args).key_file)
    with session_for(args) as session:
        guard = add_guard(
            session,
            args.guard_id,
            args.name,
            args.site,
            face_consent=args.face_consent,
            cipher=cipher,
            id_number=args.id_number,
            company_id=args.employer,
            certificate=certificate,
        )
        session.commit()
    details = [f"ID {guard.id_number_masked}"] if guard.id_number_masked else []
    details += [f"employed by {args.employer}"] if args.employer else []
    details += [f"assigned to {', '.join(args.site)}"] if args.site else []
    print(f"added guard {guard.guard_id} ({guard.name})" + (", " + ", ".join(details) if details else ""))
    return 0


def cmd_guards_consent(args: argparse.Namespace) -> int:
    from server.registry import set_face_consent

    with session_for(args) as session:
        deleted = set_face_consent(session, args.guard_id, given=args.given)
        session.commit()
    if args.given:
        print(f"recorded {args.guard_id}'s consent to face data")
    else:
        print(
            f"withdrawn: deleted {deleted} face template(s) of {args.guard_id}; terminals drop them at their next sync"
        )
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from biometrics.faces import FaceEncoder
    from server.crypto import load_cipher
    from server.enrollment import ENROLMENT_DETECT_WIDTH, EnrollmentError, enroll_photo

    cipher = load_cipher(settings_for(args).key_file)
    encoder = FaceEncoder(detect_width=ENROLMENT_DETECT_WIDTH)
    failed = 0
    with session_for(args) as session:
        for i, photo in enumerate(args.photos, 1):
            try:
                enrolment = enroll_photo(session, cipher, encoder, args.guard_id, Path(photo))
                session.commit()
                print(f"[{i}/{len(args.photos)}] {photo}: enrolled")
                for warning in enrolment.warnings:
                    print(f"[{i}/{len(args.photos)}] warning: {photo}: {warning}", file=sys.stderr)
            except EnrollmentError as exc:
                session.rollback()
                failed += 1
                print(f"[{i}/{len(args.photos)}] {exc}", file=sys.stderr)
    return 1 if failed else 0


def date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-03-01") from None


def build_parser() -> argparse.ArgumentParser:
    from guardpost import (
        cli_audit,
        cli_broker,
        cli_deploy,
        cli_duty,
        cli_export,
        cli_import,
        cli_registry,
        cli_reporting,
        cli_users,
    )

    parser = argparse.ArgumentParser(prog="guardpost", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("server", help="web app and API, plus the ingest loop unless --no-ingest")
    db_flags(p)
    p.add_argument("--mqtt", help="mqtt://host:port (env GUARDPOST_MQTT)")
    p.add_argument("--bind", help="host:port (env GUARDPOST_BIND; default 127.0.0.1:8080)")
    p.add_argument("--no-ingest", action="store_true", help="serve the web app only")
    p.add_argument(
        "--no-monitor", action="store_true", help="no duty recomputation or terminal watch (when another server has it)"
    )
    p.add_argument("--no-exports", action="store_true", help="make no export files here (another server does)")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"], help="apply the Alembic migrations (the server also does at start)")
    db_flags(p)
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("ingest", help="the ingest process on its own")
    db_flags(p)
    p.add_argument("--mqtt", help="mqtt://host:port (env GUARDPOST_MQTT)")
    p.add_argument("--share-group", help="MQTT shared-subscription group, to run several ingest processes")
    p.add_argument(
        "--client-id",
        help="MQTT client id, which names the broker session that keeps events while ingest is down "
        "(env GUARDPOST_INGEST_CLIENT_ID; default guardpost-ingest; one per process in a share group)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("agent", help="run a gate terminal")
    p.add_argument("--config", required=True, help="terminal config (TOML), see device_configs/")
    p.add_argument(
        "--exit-when-drained", action="store_true", help="exit once the source ends and the server acked all"
    )
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser("broker", help="embedded MQTT broker for machines without Mosquitto")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("demo", help="broker, server and a simulated gate on this machine")
    p.add_argument("--var", default="var/demo", help="folder for the demo's database, keys and frames")
    p.add_argument("--port", type=int, default=0, help="dashboard port (default: a free one)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("keygen", help="create a key file for template encryption")
    p.add_argument("file")
    p.set_defaults(func=cmd_keygen)

    devices = sub.add_parser("devices", help="terminals").add_subparsers(dest="action", required=True)
    p = devices.add_parser("add", help="register a terminal and print its secret once")
    p.add_argument("site_id")
    p.add_argument("device_id")
    p.add_argument("--post", help="the duty post the terminal stands at (see 'guardpost posts add')")
    p.add_argument("--json", action="store_true")
    db_flags(p)
    p.set_defaults(func=cmd_devices_add)

    guards = sub.add_parser("guards", help="guards").add_subparsers(dest="action", required=True)
    p = guards.add_parser("add", help="add a guard")
    p.add_argument("guard_id")
    p.add_argument("--name", required=True)
    p.add_argument("--site", action="append", default=[], help="assign to this site (repeatable)")
    p.add_argument("--face-consent", action="store_true", help="the guard has given separate consent to face data")
    p.add_argument(
        "--id-number",
        help="resident ID number, or - to read it from stdin (stored encrypted; needs GUARDPOST_KEY_FILE)",
    )
    p.add_argument("--employer", help="company_id of the employing company")
    p.add_argument("--certificate", help="guard certificate (保安员证) number (stored encrypted)")
    p.add_argument("--certificate-issued-on", type=date_arg, help="YYYY-MM-DD")
    p.add_argument("--certificate-valid-until", type=date_arg, help="YYYY-MM-DD")
    db_flags(p)
    p.set_defaults(func=cmd_guards_add)

    p = guards.add_parser("show", help="a guard's masked identity, certificate status and employment trajectory")
    p.add_argument("guard_id")
    p.add_argument("--json", action="store_true")
    db_flags(p)
    p.set_defaults(func=cli_registry.cmd_guards_show)

    p = guards.add_parser("consent", help="record or withdraw a guard's consent to face data")
    p.add_argument("guard_id")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--given", action="store_true", help="consent given (enrolment becomes possible)")
    given.add_argument("--withdrawn", action="store_true", help="consent withdrawn: all face templates are deleted")
    db_flags(p)
    p.set_defaults(func=cmd_guards_consent)

    p = sub.add_parser("enroll", help="enrol face photos for a guard (needs GUARDPOST_KEY_FILE)")
    p.add_argument("guard_id")
    p.add_argument("photos", nargs="+")
    db_flags(p)
    p.set_defaults(func=cmd_enroll)

    cli_registry.add_parsers(sub)
    cli_import.add_parsers(sub)
    cli_duty.add_parsers(sub)
    cli_users.add_parsers(sub)
    cli_audit.add_parsers(sub)
    cli_deploy.add_parsers(sub)
    cli_broker.add_parsers(sub, devices)
    cli_export.add_parsers(sub)
    cli_reporting.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    from server.config import ConfigError
    from server.registry import RegistryError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per dashboard poll is noise
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except (ConfigError, RegistryError, ValueError) as exc:  # edge_agent's ConfigError is a ValueError too
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OperationalError as exc:
        print(f"error: cannot use the database: {exc.orig}; check --db / GUARDPOST_DB", file=sys.stderr)
        return EXIT_RUNTIME
