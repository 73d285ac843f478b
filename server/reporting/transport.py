"""One HTTP POST of a signed batch, with separate connect and read timeouts (standard library only)."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 1_000_000


class TransportError(Exception):
    """No HTTP answer: connection refused, timeout, reset, TLS failure. Always worth a retry."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None


def post(
    url: str, body: bytes, headers: dict[str, str], connect_s: float, read_s: float, ca_file: Path | None = None
) -> Answer:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host, port = parts.hostname or "", parts.port
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=connect_s, context=context
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect_s)
        try:
            conn.connect()
            conn.sock.settimeout(read_s)  # the connect timeout no longer applies once connected
            conn.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
            response = conn.getresponse()
            data = response.read(MAX_ANSWER_BYTES)
            return Answer(response.status, data, response.getheader("Retry-After"))
        finally:
            conn.close()
    except TimeoutError:
        raise TransportError(f"no answer from {host} within the timeout") from None
    except (ConnectionError, socket.gaierror, ssl.SSLError, http.client.HTTPException, OSError) as exc:
        raise TransportError(f"cannot reach {host}:{port or ''}: {exc.__class__.__name__}: {exc}") from None
