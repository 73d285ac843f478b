"""Broker security commands: `guardpost devices provision` and `guardpost mosquitto init-ca|add-user`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from guardpost.cli import CliError, db_flags, settings_for

BROKER_DIR_ENV = "GUARDPOST_BROKER_DIR"
TERMINAL_MQTT_ENV = "GUARDPOST_TERMINAL_MQTT"
TERMINAL_SERVER_ENV = "GUARDPOST_TERMINAL_SERVER"
RELOAD_HINT = "reload Mosquitto so it applies the change: systemctl reload mosquitto"


def _broker(args: argparse.Namespace):
    from server.broker_pki import BrokerFolder

    folder = args.broker_dir or os.environ.get(BROKER_DIR_ENV)
    if not folder:
        raise CliError(f"name the broker folder (CA, password file): --broker-dir DIR or {BROKER_DIR_ENV}")
    return BrokerFolder(Path(folder))


def _password_file(args: argparse.Namespace, broker) -> Path:
    return Path(args.password_file) if args.password_file else broker.passwd


def _required(value: str | None, flag: str, env: str, example: str) -> str:
    value = value or os.environ.get(env)
    if not value:
        raise CliError(f"set {flag} or {env} (for example {example})")
    return value


def cmd_devices_provision(args: argparse.Namespace) -> int:
    from server.db import make_engine, make_sessionmaker
    from server.provisioning import ProvisionRequest, provision

    broker = _broker(args)
    request = ProvisionRequest(
        device_id=args.device_id,
        site_id=args.site,
        post_id=args.post,
        out_dir=Path(args.out),
        mqtt_url=_required(args.mqtt_url, "--mqtt-url", TERMINAL_MQTT_ENV, "mqtts://broker.example.com:8883"),
        server_url=_required(args.server_url, "--server-url", TERMINAL_SERVER_ENV, "https://guardpost.example.com"),
        client_cert=args.client_cert,
    )
    engine = make_engine(settings_for(args).db_url)
    try:
        with make_sessionmaker(engine)() as session:
            done = provision(session, broker, _password_file(args, broker), request)
            session.commit()
    finally:
        engine.dispose()  # also when called in-process (tests, scripts): no connection left to the GC
    if args.json:
        print(
            json.dumps(
                {
                    "device_id": done.device_id,
                    "site_id": done.site_id,
                    "new_terminal": done.new_terminal,
                    "out_dir": str(done.out_dir),
                    "files": [str(f) for f in done.files],
                    "certificates_revoked": done.certificates_revoked,
                }
            )
        )
        return 0
    if done.new_terminal:
        print(f"registered terminal {done.device_id} at site {done.site_id}")
    else:
        print(f"re-provisioned terminal {done.device_id}: new secret and broker password; the old ones stop working")
    if done.certificates_revoked:
        print(f"revoked {done.certificates_revoked} earlier client certificate(s) of {done.device_id}")
    print(f"wrote {done.out_dir}/: {', '.join(f.name for f in done.files)} (mode 600)")
    if done.replaced_config:
        print(f"the previous config is kept as {done.replaced_config}")
    print(f"updated the broker password file {_password_file(args, broker)}; {RELOAD_HINT}")
    print(f"copy {done.out_dir}/ to the terminal (e.g. to /etc/guardpost/), then delete it here: it holds secrets")
    return 0


def cmd_mosquitto_init_ca(args: argparse.Namespace) -> int:
    from server.broker_pki import init_ca

    broker = _broker(args)
    existed = broker.ca_key.exists()
    written = init_ca(broker.path, args.host)
    print(("kept the existing CA; " if existed else "") + f"wrote {', '.join(str(p) for p in written)}")
    print(f"the broker certificate is valid for {', '.join(args.host)}; ca.key never leaves {broker.path}")
    print(f"copy deploy/mosquitto/acl to {broker.path}/acl and point deploy/mosquitto/mosquitto.conf at this folder")
    return 0


def cmd_mosquitto_add_user(args: argparse.Namespace) -> int:
    from server.provisioning import add_service_user

    broker = _broker(args)
    out = Path(args.out)
    add_service_user(broker, _password_file(args, broker), args.name, out)
    print(f"broker user {args.name}: password written to {out} (mode 600), never printed")
    print(f"give it to ingest with GUARDPOST_MQTT_USERNAME={args.name} GUARDPOST_MQTT_PASSWORD_FILE={out}")
    print(RELOAD_HINT)
    return 0


def _broker_flags(p: argparse.ArgumentParser, *, password_file: bool = True) -> None:
    p.add_argument("--broker-dir", help=f"folder with the broker CA and password file (env {BROKER_DIR_ENV})")
    if password_file:
        p.add_argument("--password-file", help="Mosquitto password file (default: BROKER_DIR/passwd)")


def add_parsers(sub: argparse._SubParsersAction, devices: argparse._SubParsersAction) -> None:
    p = devices.add_parser(
        "provision", help="register or re-key a terminal and write its config and credentials into a folder"
    )
    p.add_argument("device_id")
    p.add_argument("--site", required=True, help="site_id of the terminal")
    p.add_argument("--post", help="the duty post the terminal stands at")
    p.add_argument("--out", required=True, help="folder for the terminal's bundle (created, mode 700)")
    p.add_argument("--mqtt-url", help=f"broker as terminals reach it, mqtts://host:8883 (env {TERMINAL_MQTT_ENV})")
    p.add_argument("--server-url", help=f"server as terminals reach it, for gallery sync (env {TERMINAL_SERVER_ENV})")
    p.add_argument("--client-cert", action="store_true", help="also issue a TLS client certificate (CN = device id)")
    p.add_argument("--json", action="store_true", help="machine-readable summary (never includes secrets)")
    _broker_flags(p)
    db_flags(p)
    p.set_defaults(func=cmd_devices_provision)

    mosquitto = sub.add_parser("mosquitto", help="broker CA, certificates and service users for Mosquitto")
    actions = mosquitto.add_subparsers(dest="action", required=True)
    p = actions.add_parser("init-ca", help="create the broker CA (kept if present) and a new server certificate")
    p.add_argument("--host", action="append", required=True, help="broker DNS name or IP terminals use (repeatable)")
    _broker_flags(p, password_file=False)
    p.set_defaults(func=cmd_mosquitto_init_ca)

    p = actions.add_parser("add-user", help="create or rotate a service user's broker password (ingest)")
    p.add_argument("name", help="for example guardpost-ingest (the name deploy/mosquitto/acl grants)")
    p.add_argument("--out", required=True, help="file to write the password to (mode 600)")
    _broker_flags(p)
    p.set_defaults(func=cmd_mosquitto_add_user)
