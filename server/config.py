"""Server settings from environment variables, validated once at start."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from protocol.mqtt_url import MqttUrl, MqttUrlError

DEFAULT_DB = "sqlite:///var/guardpost.db"
DEFAULT_MQTT = "mqtt://127.0.0.1:1883"
DEFAULT_BIND = "127.0.0.1:8080"
LOCALES = ("zh", "en")
MQTT_FILE_ENV = {
    "mqtt_password_file": "GUARDPOST_MQTT_PASSWORD_FILE",
    "mqtt_ca_file": "GUARDPOST_MQTT_CA_FILE",
    "mqtt_client_cert_file": "GUARDPOST_MQTT_CERT_FILE",
    "mqtt_client_key_file": "GUARDPOST_MQTT_KEY_FILE",
}
# Brokers must accept 1-23 letters and digits (MQTT 3.1.1 3.1.3.1); Mosquitto, EMQX and amqtt take these too.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


class ConfigError(ValueError):
    """A setting that is missing or malformed; the message says how to fix it."""


def normalise_db_url(url: str) -> str:
    """Accept plain postgresql:// URLs (as DATABASE_URL usually is) and use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_mqtt_url(url: str) -> MqttUrl:
    try:
        return MqttUrl.parse(url)
    except MqttUrlError as exc:
        raise ConfigError(f"{exc} (set --mqtt or GUARDPOST_MQTT)") from None


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"bind address {bind!r} must look like host:port (set GUARDPOST_BIND)")
    return host or "127.0.0.1", int(port)


def check_client_id(client_id: str) -> str:
    """An MQTT client id the usual brokers accept, and safe in logs: 1-128 letters, digits or -_.:@."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise ConfigError(
            f"ingest client id {client_id!r} is not valid: use 1-128 letters, digits or -_.:@ "
            "(set --client-id or GUARDPOST_INGEST_CLIENT_ID)"
        )
    return client_id


@dataclass(frozen=True)
class ServerSettings:
    db_url: str = DEFAULT_DB
    mqtt_url: str = DEFAULT_MQTT
    bind: str = DEFAULT_BIND
    key_file: Path | None = None
    ingest_client_id: str = "guardpost-ingest"
    share_group: str | None = None
    # Cookies only over HTTPS (localhost counts as secure in browsers); off only for a plain-HTTP LAN trial.
    secure_cookies: bool = True
    default_locale: str = "zh"
    # Broker credentials and TLS (server/mqtt_auth.py); the password itself comes from a file or
    # GUARDPOST_MQTT_PASSWORD, never from a default.
    mqtt_username: str | None = None
    mqtt_password_file: Path | None = None
    mqtt_ca_file: Path | None = None
    mqtt_client_cert_file: Path | None = None
    mqtt_client_key_file: Path | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> ServerSettings:
        env = os.environ
        values: dict[str, object] = {
            "db_url": env.get("GUARDPOST_DB", DEFAULT_DB),
            "mqtt_url": env.get("GUARDPOST_MQTT", DEFAULT_MQTT),
            "bind": env.get("GUARDPOST_BIND", DEFAULT_BIND),
            "key_file": Path(env["GUARDPOST_KEY_FILE"]) if env.get("GUARDPOST_KEY_FILE") else None,
            "ingest_client_id": env.get("GUARDPOST_INGEST_CLIENT_ID", "guardpost-ingest"),
            "share_group": env.get("GUARDPOST_SHARE_GROUP") or None,
            "secure_cookies": env.get("GUARDPOST_INSECURE_COOKIES", "") not in ("1", "true", "yes"),
            "default_locale": env.get("GUARDPOST_LOCALE", "zh"),
            "mqtt_username": env.get("GUARDPOST_MQTT_USERNAME") or None,
            **{field: Path(env[name]) if env.get(name) else None for field, name in MQTT_FILE_ENV.items()},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        parse_mqtt_url(settings.mqtt_url)
        parse_bind(settings.bind)
        if settings.default_locale not in LOCALES:
            raise ConfigError(
                f"locale {settings.default_locale!r} is not one of {', '.join(LOCALES)} (set GUARDPOST_LOCALE)"
            )
        from server.mqtt_auth import check_broker_auth  # imports this module

        check_broker_auth(settings)
        check_client_id(settings.ingest_client_id)
        return settings
