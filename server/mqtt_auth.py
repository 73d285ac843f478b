"""The server's broker identity: username, password (file or env, never a default) and TLS for its paho clients."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from protocol.mqtt_tls import MqttTlsError, TlsFiles, apply_tls, tls_context
from server.config import MQTT_FILE_ENV, ConfigError, parse_mqtt_url

if TYPE_CHECKING:
    from server.config import ServerSettings

PASSWORD_ENV = "GUARDPOST_MQTT_PASSWORD"


def broker_username(settings: ServerSettings, fallback: str) -> str:
    return settings.mqtt_username or parse_mqtt_url(settings.mqtt_url).username or fallback


def broker_password(settings: ServerSettings) -> str | None:
    """GUARDPOST_MQTT_PASSWORD, else the password file, else the URL's password, else none."""
    value = os.environ.get(PASSWORD_ENV, "").strip()
    if value:
        return value
    if settings.mqtt_password_file is not None:
        path = settings.mqtt_password_file
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the MQTT password file {path}: {exc.strerror} (GUARDPOST_MQTT_PASSWORD_FILE)"
            ) from None
        if not value:
            raise ConfigError(f"the MQTT password file {path} is empty; create it with 'guardpost mosquitto add-user'")
        return value
    return parse_mqtt_url(settings.mqtt_url).password


def tls_files(settings: ServerSettings) -> TlsFiles | None:
    if not parse_mqtt_url(settings.mqtt_url).tls:
        return None
    return TlsFiles(settings.mqtt_ca_file, settings.mqtt_client_cert_file, settings.mqtt_client_key_file)


def check_broker_auth(settings: ServerSettings) -> None:
    """Fail at start, in one line, on credentials or TLS files that cannot work."""
    tls_settings = ("mqtt_ca_file", "mqtt_client_cert_file", "mqtt_client_key_file")
    given = [MQTT_FILE_ENV[name] for name in tls_settings if getattr(settings, name) is not None]
    if given and not parse_mqtt_url(settings.mqtt_url).tls:
        raise ConfigError(f"{given[0]} is set, but the broker URL is not mqtts://host:port (set GUARDPOST_MQTT)")
    broker_password(settings)
    try:
        files = tls_files(settings)
        if files is not None:
            tls_context(files)
    except MqttTlsError as exc:
        raise ConfigError(f"{exc} (see {', '.join(MQTT_FILE_ENV[name] for name in tls_settings)})") from None


def configure_broker_auth(client: mqtt.Client, settings: ServerSettings, fallback_username: str) -> None:
    """Give a paho client the configured username and password and, for mqtts://, TLS."""
    client.username_pw_set(broker_username(settings, fallback_username), broker_password(settings))
    files = tls_files(settings)
    if files is not None:
        apply_tls(client, files)
