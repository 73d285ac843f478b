"""Broker addresses as URLs: mqtt://[user[:password]@]host[:port]."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


class MqttUrlError(ValueError):
    """A broker URL that cannot be used."""


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        try:
            parts = urlsplit(url)
            port = parts.port or 1883
        except ValueError as exc:
            raise MqttUrlError(f"MQTT URL {url!r} is not valid: {exc}") from None
        if parts.scheme != "mqtt" or not parts.hostname or parts.path not in ("", "/"):
            raise MqttUrlError(f"MQTT URL {url!r} must look like mqtt://host:port")
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.password else (f"{self.username}@" if self.username else "")
        return f"mqtt://{user}{self.host}:{self.port}"
