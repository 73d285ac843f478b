"""TLS for paho clients on both sides: the broker's CA (else the system's) and an optional client certificate."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt


class MqttTlsError(ValueError):
    """A CA or certificate file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path | None = None  # None: the system's trusted CAs (a broker with a public certificate)
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise MqttTlsError("a client certificate needs both its certificate file and its key file")


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails: paho drops such a socket without closing it, and a terminal
    retrying against a broker whose certificate it refuses would leak one descriptor per attempt."""

    def do_handshake(self, *args, **kwargs):
        try:
            return super().do_handshake(*args, **kwargs)
        except BaseException:
            self.close()
            raise


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context that verifies the broker's certificate and host name (TLS 1.2 or newer)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.sslsocket_class = _ClosingSSLSocket
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(files.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise MqttTlsError(f"cannot use the broker CA file {files.ca_file}: {_reason(exc)}") from None
    if files.cert_file is not None:
        try:
            context.load_cert_chain(str(files.cert_file), str(files.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise MqttTlsError(
                f"cannot use the client certificate {files.cert_file} with key {files.key_file}: {_reason(exc)}"
            ) from None
    return context


def apply_tls(client: mqtt.Client, files: TlsFiles) -> None:
    client.tls_set_context(tls_context(files))


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
