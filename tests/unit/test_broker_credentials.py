"""Broker credentials without a broker: password file entries, mqtts:// URLs, TLS settings, the provisioned config."""

from __future__ import annotations

import base64
import hashlib
import tomllib
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig, ConfigError, load_config
from protocol.mqtt_url import MqttUrl, MqttUrlError
from server.config import ConfigError as ServerConfigError
from server.config import ServerSettings
from server.mosquitto_passwd import (
    PasswordFileError,
    hash_password,
    parse_entries,
    verify_password,
    with_entry,
)
from server.provisioning import ProvisionRequest, agent_config


def test_hash_is_mosquittos_pbkdf2_sha512_format():
    salt = bytes(range(12))
    entry = hash_password("s3cret", salt=salt, iterations=101)
    kind, iterations, salt_b64, digest_b64 = entry.split("$")[1:]
    assert (kind, iterations, base64.b64decode(salt_b64)) == ("7", "101", salt)
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)


def test_verify_accepts_the_password_and_nothing_else():
    entry = hash_password("right")
    assert verify_password("right", entry)
    assert not verify_password("wrong", entry)
    assert not verify_password("right", "$6$abc$def")
    assert not verify_password("right", "garbage")


def test_each_hash_has_its_own_salt():
    assert hash_password("same") != hash_password("same")


def test_with_entry_replaces_in_place_and_keeps_other_lines():
    text = "# broker users\nalpha:$7$1$a$b\nbeta:$7$1$c$d\n"
    updated = with_entry(text, "alpha", "$7$2$x$y")
    assert updated == "# broker users\nalpha:$7$2$x$y\nbeta:$7$1$c$d\n"
    assert parse_entries(with_entry(updated, "gamma", "$7$3$z$w")) == {
        "alpha": "$7$2$x$y",
        "beta": "$7$1$c$d",
        "gamma": "$7$3$z$w",
    }


def test_with_entry_collapses_duplicate_lines_of_a_user():
    assert with_entry("a:1\nb:2\na:3\n", "a", "9") == "a:9\nb:2\n"


@pytest.mark.parametrize("name", ["", "a:b", "a b", "tab\tname"])
def test_usernames_that_would_break_the_file_are_refused(name):
    with pytest.raises(PasswordFileError):
        with_entry("", name, "$7$1$a$b")


def test_a_damaged_password_file_is_reported_with_its_line():
    with pytest.raises(PasswordFileError, match="line 2"):
        parse_entries("ok:$7$1$a$b\nno separator here\n")


def test_mqtts_urls_default_to_port_8883_and_say_so_when_redacted():
    url = MqttUrl.parse("mqtts://ingest:pw@broker.example.com")
    assert (url.host, url.port, url.tls, url.username, url.password) == (
        "broker.example.com",
        8883,
        True,
        "ingest",
        "pw",
    )
    assert url.redacted() == "mqtts://ingest:***@broker.example.com:8883"
    assert MqttUrl.parse("mqtt://h").port == 1883 and not MqttUrl.parse("mqtt://h").tls
    with pytest.raises(MqttUrlError, match="mqtts://host:port"):
        MqttUrl.parse("ssl://h:8883")


BASE = 'device_id = "gate-1"\nsite_id = "site-a"\n'


@pytest.mark.parametrize(
    "mqtt, message",
    [
        ('url = "mqtt://b:1883"\nca_file = "ca.crt"\n', "ca_file is for TLS: use an mqtts:// url"),
        ('url = "mqtts://b"\nclient_cert_file = "c.crt"\n', "client_cert_file and client_key_file go together"),
        ('url = "mqtts://gate-1:pw@b"\n', "mqtt.url"),
        ('url = "mqtts://b"\npassword = "pw"\n', "mqtt.password: Extra inputs are not permitted"),
    ],
)
def test_agent_mqtt_settings_that_cannot_work_are_refused(tmp_path, mqtt, message):
    path = tmp_path / "agent.toml"
    path.write_text(BASE + "[mqtt]\n" + mqtt)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(path)


def test_agent_tls_files_resolve_from_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GUARDPOST_MQTT_PASSWORD", raising=False)
    path = tmp_path / "agent.toml"
    path.write_text(
        BASE + '[mqtt]\nurl = "mqtts://b"\npassword_file = "pw"\nca_file = "ca.crt"\n'
        'client_cert_file = "c.crt"\nclient_key_file = "c.key"\n'
    )
    (tmp_path / "pw").write_text("hunter2\n")
    config = load_config(path)
    files = config.mqtt.tls_files()
    assert (files.ca_file, files.cert_file, files.key_file) == (
        tmp_path / "ca.crt",
        tmp_path / "c.crt",
        tmp_path / "c.key",
    )
    assert config.mqtt_password() == "hunter2"
    monkeypatch.setenv("GUARDPOST_MQTT_PASSWORD", "from-env")
    assert config.mqtt_password() == "from-env"


def test_agent_without_password_settings_has_no_password(monkeypatch):
    monkeypatch.delenv("GUARDPOST_MQTT_PASSWORD", raising=False)
    config = AgentConfig.model_validate({"device_id": "g", "site_id": "s"})
    assert config.mqtt_password() is None and config.mqtt.tls_files() is None


def test_an_unreadable_agent_password_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GUARDPOST_MQTT_PASSWORD", raising=False)
    config = AgentConfig.model_validate(
        {"device_id": "g", "site_id": "s", "mqtt": {"password_file": str(tmp_path / "missing")}}
    )
    with pytest.raises(ConfigError, match="cannot read the MQTT password file .*missing"):
        config.mqtt_password()


@pytest.mark.parametrize("client_cert", [False, True])
def test_the_provisioned_config_is_a_valid_agent_config(client_cert):
    request = ProvisionRequest(
        device_id="gate-7",
        site_id="site-b",
        out_dir=Path("/unused"),
        mqtt_url="mqtts://broker.example.com:8884",
        server_url="https://guardpost.example.com",
        client_cert=client_cert,
    )
    config = AgentConfig.model_validate(tomllib.loads(agent_config(request, has_ca=True, post_id="north")))
    assert (config.device_id, config.site_id, config.mqtt.url) == ("gate-7", "site-b", request.mqtt_url)
    assert config.mqtt.ca_file == Path("ca.crt") and config.mqtt.password_file == Path("mqtt.password")
    assert (config.mqtt.client_cert_file is not None) is client_cert
    assert config.secret_file == Path("terminal.secret") and config.gallery.key_file == Path("gallery.key")


def _clear_mqtt_env(monkeypatch):
    for name in (
        "GUARDPOST_MQTT",
        "GUARDPOST_MQTT_USERNAME",
        "GUARDPOST_MQTT_PASSWORD",
        "GUARDPOST_MQTT_PASSWORD_FILE",
        "GUARDPOST_MQTT_CA_FILE",
        "GUARDPOST_MQTT_CERT_FILE",
        "GUARDPOST_MQTT_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_server_tls_files_need_an_mqtts_url(monkeypatch, tmp_path):
    _clear_mqtt_env(monkeypatch)
    monkeypatch.setenv("GUARDPOST_MQTT", "mqtt://broker:1883")
    monkeypatch.setenv("GUARDPOST_MQTT_CA_FILE", str(tmp_path / "ca.crt"))
    with pytest.raises(ServerConfigError, match="GUARDPOST_MQTT_CA_FILE is set, but the broker URL is not mqtts"):
        ServerSettings.from_env()


def test_server_password_file_must_be_readable_at_start(monkeypatch, tmp_path):
    _clear_mqtt_env(monkeypatch)
    monkeypatch.setenv("GUARDPOST_MQTT_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ServerConfigError, match="cannot read the MQTT password file"):
        ServerSettings.from_env()


def test_server_ca_file_that_is_not_a_certificate_is_refused_at_start(monkeypatch, tmp_path):
    _clear_mqtt_env(monkeypatch)
    (tmp_path / "ca.crt").write_text("not a certificate")
    monkeypatch.setenv("GUARDPOST_MQTT", "mqtts://broker")
    monkeypatch.setenv("GUARDPOST_MQTT_CA_FILE", str(tmp_path / "ca.crt"))
    with pytest.raises(ServerConfigError, match="cannot use the broker CA file"):
        ServerSettings.from_env()


def test_server_settings_read_broker_identity_from_env(monkeypatch, tmp_path):
    _clear_mqtt_env(monkeypatch)
    (tmp_path / "pw").write_text("s3cret\n")
    monkeypatch.setenv("GUARDPOST_MQTT_USERNAME", "guardpost-ingest")
    monkeypatch.setenv("GUARDPOST_MQTT_PASSWORD_FILE", str(tmp_path / "pw"))
    from server.mqtt_auth import broker_password, broker_username

    settings = ServerSettings.from_env()
    assert broker_username(settings, "fallback") == "guardpost-ingest"
    assert broker_password(settings) == "s3cret"
    assert broker_password(ServerSettings()) is None  # no default password, ever
