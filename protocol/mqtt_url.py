"""Broker addresses as URLs: mqtt://[user[:password]@]host[:port], or mqtts:// for MQTT over TLS."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class MqttUrlError(ValueError):
    """A broker URL that cannot be used."""


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise MqttUrlError(f"MQTT URL {url!r} is not valid: {exc}") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
            raise MqttUrlError(f"MQTT URL {url!r} must look like mqtt://host:port or mqtts://host:port (TLS)")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
        )

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.password else (f"{self.username}@" if self.username else "")
        return f"{self.scheme}://{user}{self.host}:{self.port}"
