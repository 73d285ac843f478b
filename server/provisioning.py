"""Terminal provisioning: register or re-key a terminal and write everything it needs into one folder.

Each run issues a new HMAC secret and a new broker password (and, on request, a new client certificate,
revoking the old ones), so re-provisioning is also how a terminal's credentials are rotated.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from protocol.mqtt_url import MqttUrl, MqttUrlError
from protocol.topics import TopicError, check_id
from server.broker_pki import (
    BrokerFolder,
    add_service_user_name,
    issue_client_cert,
    revoke_device,
    service_users,
)
from server.models import Post, Terminal
from server.mosquitto_passwd import locked, new_password, read_entries, set_password, write_private
from server.registry import RegistryError, add_device

CONFIG = "agent.toml"
SECRET = "terminal.secret"
MQTT_PASSWORD = "mqtt.password"
GALLERY_KEY = "gallery.key"
CA_CERT = "ca.crt"
CLIENT_CERT = "client.crt"
CLIENT_KEY = "client.key"


@dataclass(frozen=True)
class ProvisionRequest:
    device_id: str
    site_id: str
    out_dir: Path
    mqtt_url: str  # as terminals reach the broker, e.g. mqtts://broker.example.com:8883
    server_url: str  # as terminals reach the server, for gallery sync
    post_id: str | None = None
    client_cert: bool = False
    state_dir: str = "/var/lib/guardpost"


@dataclass
class Provisioned:
    device_id: str
    site_id: str
    new_terminal: bool
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    replaced_config: Path | None = None  # an earlier agent.toml, kept under this name
    certificates_revoked: int = 0


def provision(session: Session, broker: BrokerFolder, password_file: Path, request: ProvisionRequest) -> Provisioned:
    """Registers (or re-keys) the terminal in ``session`` (the caller commits), updates the broker password
    file and CA, and writes the bundle. Run again after a failure: every run issues everything afresh."""
    url = _check_request(request)
    broker.require_ca()  # init-ca also makes the folder and the password file with the broker's modes
    with locked(broker.path / "index.json"):
        if request.device_id in service_users(broker):
            raise RegistryError(f"{request.device_id} is a broker service user, not a terminal; choose another id")
        read_entries(password_file)  # a damaged file is refused before anything changes
        terminal, secret, new = _register_or_rekey(session, request)
        password = new_password()
        result = Provisioned(request.device_id, request.site_id, new, request.out_dir)
        out = request.out_dir
        out.mkdir(parents=True, exist_ok=True)
        out.chmod(0o700)
        result.certificates_revoked = revoke_device(broker, request.device_id)
        files: dict[str, bytes] = {SECRET: secret.encode() + b"\n", MQTT_PASSWORD: password.encode() + b"\n"}
        if not (out / GALLERY_KEY).exists():  # a local cache key, not a credential: kept across re-provisioning
            files[GALLERY_KEY] = Fernet.generate_key() + b"\n"
        if url.tls and broker.ca_cert.exists():
            files[CA_CERT] = broker.ca_cert.read_bytes()
        if request.client_cert:
            files[CLIENT_CERT], files[CLIENT_KEY] = issue_client_cert(broker, request.device_id)
        for name, data in files.items():
            write_private(out / name, data)
            result.files.append(out / name)
        if not request.client_cert:  # a revoked certificate left in the folder would only mislead
            for name in (CLIENT_CERT, CLIENT_KEY):
                (out / name).unlink(missing_ok=True)
        config = agent_config(request, has_ca=CA_CERT in files, post_id=terminal.post_id)
        result.replaced_config = _write_config(out / CONFIG, config)
        result.files.append(out / CONFIG)
        set_password(password_file, request.device_id, password)
        session.flush()
    return result


def add_service_user(broker: BrokerFolder, password_file: Path, name: str, out_file: Path) -> None:
    """Create or rotate the broker password of a service (ingest); the password goes to ``out_file`` (mode 600)."""
    try:
        check_id(name, "user name")
    except TopicError as exc:
        raise RegistryError(str(exc)) from None
    broker.require_ca()
    with locked(broker.path / "index.json"):
        if name in read_entries(password_file) and name not in service_users(broker):
            raise RegistryError(f"{name} is already a broker user (a terminal, or added by hand); choose another name")
        password = new_password()
        write_private(out_file, password.encode() + b"\n")
        add_service_user_name(broker, name)
        set_password(password_file, name, password)


def agent_config(request: ProvisionRequest, *, has_ca: bool, post_id: str | None = None) -> str:
    """The terminal's TOML config; paths are relative to the bundle folder (load_config resolves them)."""
    post = f", post {post_id}" if post_id else ""
    lines = [
        f"# GuardPost terminal {request.device_id} at site {request.site_id}{post}, written by",
        "# 'guardpost devices provision'. Copy the whole folder to the terminal (for example to",
        "# /etc/guardpost/); the secret, password and key files must stay mode 600. Camera, reader and",
        "# gate settings are documented in device_configs/README.md.",
        f"device_id = {_toml(request.device_id)}",
        f"site_id = {_toml(request.site_id)}",
        f"secret_file = {_toml(SECRET)}",
        f"state_dir = {_toml(request.state_dir)}",
        "",
        "[mqtt]",
        f"url = {_toml(request.mqtt_url)}",
        f"password_file = {_toml(MQTT_PASSWORD)}",
    ]
    if has_ca:
        lines.append(f"ca_file = {_toml(CA_CERT)}")
    if request.client_cert:
        lines += [f"client_cert_file = {_toml(CLIENT_CERT)}", f"client_key_file = {_toml(CLIENT_KEY)}"]
    lines += ["", "[server]", f"url = {_toml(request.server_url)}", "", "[gallery]", f"key_file = {_toml(GALLERY_KEY)}"]
    return "\n".join(lines) + "\n"


def _check_request(request: ProvisionRequest) -> MqttUrl:
    try:
        check_id(request.device_id, "device_id")
        check_id(request.site_id, "site_id")
    except TopicError as exc:
        raise RegistryError(str(exc)) from None
    try:
        url = MqttUrl.parse(request.mqtt_url)
    except MqttUrlError as exc:
        raise RegistryError(f"{exc} (the broker address terminals use: --mqtt-url)") from None
    if url.username or url.password:
        raise RegistryError("--mqtt-url must not carry credentials: the bundle's password file holds them")
    if request.client_cert and not url.tls:
        raise RegistryError("--client-cert needs an mqtts:// broker URL (client certificates are a TLS feature)")
    if not request.server_url.startswith(("http://", "https://")):
        raise RegistryError(f"--server-url {request.server_url!r} must start with https:// (or http://)")
    return url


def _register_or_rekey(session: Session, request: ProvisionRequest) -> tuple[Terminal, str, bool]:
    terminal = session.get(Terminal, request.device_id)
    if terminal is None:
        terminal, secret = add_device(session, request.site_id, request.device_id, post_id=request.post_id)
        return terminal, secret, True
    if terminal.site_id != request.site_id:
        raise RegistryError(
            f"terminal {request.device_id} is registered at site {terminal.site_id}, not {request.site_id}; "
            "a terminal does not change site by re-provisioning"
        )
    if request.post_id is not None:
        post = session.get(Post, request.post_id)
        if post is None or post.site_id != request.site_id:
            raise RegistryError(
                f"site {request.site_id} has no post {request.post_id}; add it with 'guardpost posts add'"
            )
        terminal.post_id = request.post_id
    # The old secret stops verifying at once: events still in the terminal's outbox signed with it are
    # refused (and listed as rejects), so re-key a terminal whose outbox is empty.
    terminal.secret = secrets.token_hex(32)
    return terminal, terminal.secret, False


def _write_config(path: Path, text: str) -> Path | None:
    """Write agent.toml; an earlier one that differs (perhaps edited by hand) is kept as agent.toml.old."""
    kept = None
    if path.exists() and path.read_text(encoding="utf-8") != text:
        kept = path.with_name(path.name + ".old")
        path.replace(kept)
    write_private(path, text.encode(), mode=0o600)
    return kept


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string
