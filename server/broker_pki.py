"""The broker's small CA: its key and certificate, the broker's server certificate, terminal client
certificates and the revocation list Mosquitto checks them against. Files live in one server-side folder."""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.mosquitto_passwd import write_private

CA_DAYS = 3650
LEAF_DAYS = 825
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
BROKER_GROUP = "mosquitto"  # Mosquitto drops to this user's group; it must read the files marked "broker" below


class BrokerSetupError(ValueError):
    """The broker folder is missing something or cannot be written; the message says how to fix it."""


@dataclass(frozen=True)
class BrokerFolder:
    path: Path

    @property
    def ca_key(self) -> Path:  # never leaves this folder, never readable by the broker
        return self.path / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.path / "ca.crt"

    @property
    def server_key(self) -> Path:  # broker
        return self.path / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.path / "server.crt"

    @property
    def crl(self) -> Path:  # broker
        return self.path / "crl.pem"

    @property
    def passwd(self) -> Path:  # broker
        return self.path / "passwd"

    @property
    def index(self) -> Path:  # certificates issued and revoked, service users
        return self.path / "index.json"

    def require_ca(self) -> None:
        if not self.ca_key.exists() or not self.ca_cert.exists():
            raise BrokerSetupError(
                f"no broker CA in {self.path}: create it with 'guardpost mosquitto init-ca --host BROKER_NAME'"
            )


def broker_group() -> int | None:
    """The group whose members may read the broker's files, when it exists and we may give files to it."""
    try:
        gid = grp.getgrnam(BROKER_GROUP).gr_gid
    except KeyError:
        return None
    return gid if os.geteuid() == 0 or gid in os.getgroups() else None


def init_ca(folder: Path, hosts: list[str], *, now: datetime | None = None) -> list[Path]:
    """Create the CA if missing (an existing one is kept), a new server certificate for ``hosts``,
    an empty revocation list and password file if missing. Returns the files written."""
    if not hosts:
        raise BrokerSetupError("name the broker host(s) terminals connect to: --host broker.example.com")
    names = [_san(host) for host in hosts]
    now = now or datetime.now(UTC)
    broker = BrokerFolder(folder)
    group = broker_group()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o750)
    if group is not None:
        os.chown(folder, -1, group)
    written: list[Path] = []
    if not broker.ca_key.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GuardPost broker CA")])
        cert = (
            _builder(subject, subject, key.public_key(), now, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private(broker.ca_key, _key_pem(key))
        write_private(broker.ca_cert, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
        written += [broker.ca_key, broker.ca_cert]
    ca_key, ca_cert = _load_ca(broker)
    server_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    server_cert = (
        _leaf(_builder(subject, ca_cert.subject, server_key.public_key(), now, LEAF_DAYS), ca_key)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(broker.server_key, _key_pem(server_key), mode=0o640, group=group)
    write_private(broker.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    written += [broker.server_key, broker.server_cert]
    if not broker.crl.exists():
        write_crl(broker, now=now)
        written.append(broker.crl)
    if not broker.passwd.exists():
        write_private(broker.passwd, b"", mode=0o640, group=group)
        written.append(broker.passwd)
    return written


def issue_client_cert(broker: BrokerFolder, device_id: str, *, now: datetime | None = None) -> tuple[bytes, bytes]:
    """A client certificate whose common name is the device id (Mosquitto's use_identity_as_username makes it
    the username the ACL sees). Returns (certificate PEM, key PEM); the key is not kept here."""
    now = now or datetime.now(UTC)
    ca_key, ca_cert = _load_ca(broker)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)])
    cert = (
        _leaf(_builder(subject, ca_cert.subject, key.public_key(), now, LEAF_DAYS), ca_key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    index = _read_index(broker)
    index["issued"].setdefault(device_id, []).append(format(cert.serial_number, "x"))
    _write_index(broker, index)
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def revoke_device(broker: BrokerFolder, device_id: str) -> int:
    """Revoke every certificate issued to ``device_id``; returns how many were newly revoked."""
    index = _read_index(broker)
    revoked = set(index["revoked"])
    new = [serial for serial in index["issued"].get(device_id, []) if serial not in revoked]
    if new:
        index["revoked"] = sorted(revoked | set(new))
        _write_index(broker, index)
        write_crl(broker)
    return len(new)


def write_crl(broker: BrokerFolder, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    ca_key, ca_cert = _load_ca(broker)
    # OpenSSL refuses every client certificate once a CRL's next update has passed, and nothing here
    # republishes it on a schedule: it is rewritten at each revocation and stays valid as long as the CA.
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(ca_cert.not_valid_after_utc)
    )
    for serial in _read_index(broker)["revoked"]:
        entry = x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(now).build()
        builder = builder.add_revoked_certificate(entry)
    pem = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    group = broker_group()
    write_private(broker.crl, pem, mode=0o644, group=group)


def _load_ca(broker: BrokerFolder) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    broker.require_ca()
    try:
        key = serialization.load_pem_private_key(broker.ca_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(broker.ca_cert.read_bytes())
    except OSError as exc:
        raise BrokerSetupError(f"cannot read the broker CA in {broker.path}: {exc.strerror}") from None
    except ValueError as exc:
        raise BrokerSetupError(f"the broker CA in {broker.path} is damaged: {exc}") from None
    return key, cert  # type: ignore[return-value]


def service_users(broker: BrokerFolder) -> set[str]:
    """Broker users that are services (ingest), not terminals: provisioning must never take their names."""
    return set(_read_index(broker)["service_users"])


def add_service_user_name(broker: BrokerFolder, name: str) -> None:
    index = _read_index(broker)
    index["service_users"] = sorted(set(index["service_users"]) | {name})
    _write_index(broker, index)


def _read_index(broker: BrokerFolder) -> dict:
    try:
        data = json.loads(broker.index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as exc:
        raise BrokerSetupError(f"cannot read the broker index {broker.index}: {exc}") from None
    return {
        "issued": dict(data.get("issued", {})),
        "revoked": list(data.get("revoked", [])),
        "service_users": list(data.get("service_users", [])),
    }


def _write_index(broker: BrokerFolder, index: dict) -> None:
    write_private(broker.index, json.dumps(index, indent=1, sort_keys=True).encode())


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _DNS_NAME.match(host):
        raise BrokerSetupError(f"--host {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: datetime, days: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # a terminal clock slightly behind still accepts it
        .not_valid_after(now + timedelta(days=days))
    )


def _leaf(builder: x509.CertificateBuilder, ca_key) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
