"""Broker security with the shipped Mosquitto config (deploy/mosquitto/): a private Mosquitto per module,
credentials issued by the real `guardpost mosquitto` and `guardpost devices provision` commands."""

from __future__ import annotations

import difflib
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config import AgentConfig, load_config
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from guardpost.cli import main
from protocol.events import build_ack, encode
from protocol.mqtt_tls import TlsFiles, apply_tls
from protocol.mqtt_url import MqttUrl
from protocol.topics import acks_topic, events_topic, subscription
from server.db import make_engine, make_sessionmaker
from server.models import Terminal
from server.mosquitto_passwd import read_entries, verify_password
from tests.support.brokers import PRODUCTION_BROKER_DIR, PRODUCTION_DATA_DIRS, SHIPPED_CONFIG, shipped_broker
from tests.support.events import signed_event
from tests.support.services import wait_for
from tests.support.stack import running_stack, unique

INGEST = "guardpost-ingest"  # the service user deploy/mosquitto/acl grants


class Client:
    """A paho client that reports whether the broker let it in and records what it receives."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
        client_id: str | None = None,
        v5: bool = True,
        session_expiry_s: int = 0,
    ):
        self.url = MqttUrl.parse(url)
        self.v5, self.session_expiry_s = v5, session_expiry_s
        client_id = client_id or f"test-{uuid.uuid4().hex[:8]}"
        if v5:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:  # as the terminal's agent connects
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        if self.url.tls:
            apply_tls(self.client, tls or TlsFiles())
        self.reason: mqtt.ReasonCode | None = None
        self.error: Exception | None = None
        self._answered, self._subscribed = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self._answered.set()
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, _c, _u, _flags, reason_code, _props) -> None:
        self.reason = reason_code
        self._answered.set()

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload))

    def connect(self, timeout: float = 10) -> bool:
        """True when the broker accepted the connection; False when it refused it or hung up."""
        kwargs = {}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            kwargs = {"clean_start": not self.session_expiry_s, "properties": props}
        try:
            self.client.connect(self.url.host, self.url.port, keepalive=30, **kwargs)
        except (OSError, ssl.SSLError) as exc:  # a refused TLS handshake
            self.error = exc
            return False
        self.client.loop_start()
        self._answered.wait(timeout)
        accepted = self.reason is not None and not self.reason.is_failure and self.client.is_connected()
        if not accepted:
            self.close()
        return accepted

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def received(self, topic: str | None = None) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if topic is None or t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def broker():
    with shipped_broker() as running:
        out = running.root / "ingest.password"
        assert main(["mosquitto", "add-user", INGEST, "--out", str(out), "--broker-dir", str(running.broker_dir)]) == 0
        running.reload()
        running.ingest_password_file = out
        yield running


def ingest_client(broker, **kwargs) -> Client:
    password = broker.ingest_password_file.read_text().strip()
    return Client(broker.tls_url, username=INGEST, password=password, tls=TlsFiles(broker.ca_file), **kwargs)


def provision(broker, db_url: str, out: Path, device: str, site: str, *extra: str, url: str | None = None) -> Path:
    args = ["devices", "provision", device, "--site", site, "--out", str(out), "--db", db_url]
    args += ["--mqtt-url", url or broker.tls_url, "--server-url", "https://guardpost.example.com"]
    assert main([*args, "--broker-dir", str(broker.broker_dir), *extra]) == 0
    broker.reload()
    return out


def stored_secret(db_url: str, device: str) -> str | None:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            terminal = session.get(Terminal, device)
            return terminal.secret if terminal else None
    finally:
        engine.dispose()


def bundle_config(bundle: Path) -> AgentConfig:
    return load_config(bundle / "agent.toml")  # the agent's own validation


def terminal_client(bundle: Path, *, password: str | None = None, with_password: bool = True) -> Client:
    """Connects as the agent does: MQTT 3.1.1, username = device id, the bundle's password, CA and certificate."""
    config = bundle_config(bundle)
    return Client(
        config.mqtt.url,
        username=config.device_id if with_password else None,
        password=(password or config.mqtt_password()) if with_password else None,
        tls=config.mqtt.tls_files(),
        client_id=f"guardpost-{config.device_id}",
        v5=False,
    )


def test_the_broker_runs_the_shipped_config_with_only_paths_and_ports_changed(broker):
    shipped = SHIPPED_CONFIG.read_text().splitlines()
    used = (broker.root / "mosquitto.conf").read_text().splitlines()
    changed = [line for line in difflib.ndiff(shipped, used) if line.startswith("- ")]
    assert len(shipped) == len(used) and changed
    production_paths = (PRODUCTION_BROKER_DIR, *PRODUCTION_DATA_DIRS)
    for line in changed:
        assert line[2:].startswith("listener ") or any(p in line for p in production_paths), line
    assert sum(line.startswith("listener ") for line in used) == 3


def test_anonymous_clients_are_refused_on_every_listener(broker):
    assert not Client(broker.url).connect()
    assert not Client(broker.tls_url, tls=TlsFiles(broker.ca_file)).connect()
    no_certificate = Client(broker.mtls_url, tls=TlsFiles(broker.ca_file))
    assert not no_certificate.connect()
    assert ingest_client(broker).connect(), "control: the service user with its password gets in"


def test_a_wrong_password_is_refused(broker, tmp_path, db_url):
    bundle = provision(broker, db_url, tmp_path / "gate", unique("gate"), unique("site"))
    assert not terminal_client(bundle, password="not-the-password").connect()
    assert not Client(broker.tls_url, username=INGEST, password="guess", tls=TlsFiles(broker.ca_file)).connect()
    client = terminal_client(bundle)
    assert client.connect(), "control: the provisioned password gets in"
    client.close()


def test_tls_clients_check_the_broker_certificate(broker, tmp_path, db_url):
    bundle = provision(broker, db_url, tmp_path / "gate", unique("gate"), unique("site"))
    config = bundle_config(bundle)
    system_cas_only = Client(config.mqtt.url, username=config.device_id, password=config.mqtt_password(), v5=False)
    assert not system_cas_only.connect()
    assert isinstance(system_cas_only.error, ssl.SSLCertVerificationError)


def test_provisioning_writes_a_private_bundle_and_prints_no_secret(broker, tmp_path, db_url, capsys):
    device, site = unique("gate"), unique("site")
    bundle = provision(broker, db_url, tmp_path / "gate", device, site)
    output = capsys.readouterr().out
    config = bundle_config(bundle)
    assert (config.device_id, config.site_id) == (device, site)
    secret, password = config.secret(), config.mqtt_password()
    assert secret not in output and password not in output
    assert (bundle.stat().st_mode & 0o777) == 0o700
    for name in ("terminal.secret", "mqtt.password", "gallery.key", "agent.toml"):
        assert ((bundle / name).stat().st_mode & 0o777) == 0o600, name
    assert (bundle / "ca.crt").read_bytes() == broker.ca_file.read_bytes()
    assert verify_password(password, read_entries(broker.passwd)[device])
    assert stored_secret(db_url, device) == secret


def test_a_provisioned_terminal_reaches_ingest_over_tls_and_gets_its_ack(broker, tmp_path, db_url):
    device, site = unique("gate"), unique("site")
    with running_stack(
        tmp_path,
        broker.tls_url,
        db_url,
        mqtt_username=INGEST,
        mqtt_password_file=broker.ingest_password_file,
        mqtt_ca_file=broker.ca_file,
    ) as stack:
        bundle = provision(broker, db_url, tmp_path / "gate", device, site)
        config = bundle_config(bundle)
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        publisher = Publisher(
            config.device_id,
            config.site_id,
            config.mqtt.url,
            outbox,
            username=config.mqtt.username,
            password=config.mqtt_password(),
            tls=config.mqtt.tls_files(),
        )
        publisher.start()
        try:
            assert publisher.connected.wait(20), f"terminal could not connect:\n{broker.log()[-1500:]}"
            event = outbox.append(lambda seq: signed_event(config.secret(), site, device, seq=seq))

            def acked() -> bool:
                publisher.flush(config.mqtt.resend_after_s)
                return outbox.depth() == 0

            wait_for(acked, 30, "the server's ack")
        finally:
            publisher.stop()
            outbox.close()
        stored = stack.api(f"/api/v1/events?device={device}")["events"]
        assert [e["event_id"] for e in stored] == [event["event_id"]]
        assert stack.api(f"/api/v1/rejects?device={device}")["rejects"] == []


def publish_as(make_client, topic: str, payload: bytes) -> None:
    """Publish at QoS 1 on a connection of its own: Mosquitto 2.0 closes a connection after a denied publish."""
    client = make_client()
    assert client.connect()
    try:
        info = client.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.is_published() or not client.client.is_connected(), 10, f"PUBACK for {topic}")
    finally:
        client.close()


def test_a_terminal_cannot_publish_or_read_under_another_terminals_id(broker, tmp_path, db_url):
    site = unique("site")
    a, b = unique("gate-a"), unique("gate-b")
    bundle_a = provision(broker, db_url, tmp_path / "a", a, site)
    bundle_b = provision(broker, db_url, tmp_path / "b", b, site)
    ingest = ingest_client(broker)
    terminal_a, terminal_b = terminal_client(bundle_a), terminal_client(bundle_b)
    try:
        assert ingest.connect()
        ingest.subscribe(subscription("events"))
        # The broker routes a publish before it acks it, so the forgery is dropped before the control is sent.
        publish_as(lambda: terminal_client(bundle_a), events_topic(site, b), b"forged by A")
        publish_as(lambda: terminal_client(bundle_a), events_topic(site, a), b"control from A")
        wait_for(lambda: ingest.received(events_topic(site, a)), 10, "A's control event")
        assert ingest.received(events_topic(site, b)) == []

        assert terminal_a.connect() and terminal_b.connect()
        terminal_a.subscribe(acks_topic(site, b))  # granted, but B's acks are never delivered to A
        terminal_a.subscribe(acks_topic(site, a))
        terminal_b.subscribe(acks_topic(site, b))
        ingest.publish(acks_topic(site, b), build_ack(["for-b"]))
        ingest.publish(acks_topic(site, a), build_ack(["for-a"]))
        wait_for(lambda: terminal_a.received(acks_topic(site, a)) and terminal_b.received(acks_topic(site, b)), 10)
        assert terminal_a.received(acks_topic(site, b)) == []
    finally:
        for client in (ingest, terminal_a, terminal_b):
            client.close()


def test_reprovisioning_rotates_the_password_and_the_secret(broker, tmp_path, db_url):
    device, site = unique("gate"), unique("site")
    with running_stack(
        tmp_path,
        broker.tls_url,
        db_url,
        mqtt_username=INGEST,
        mqtt_password_file=broker.ingest_password_file,
        mqtt_ca_file=broker.ca_file,
    ) as stack:
        bundle = provision(broker, db_url, tmp_path / "gate", device, site)
        old = bundle_config(bundle)
        old_secret, old_password = old.secret(), old.mqtt_password()
        provision(broker, db_url, bundle, device, site)
        new = bundle_config(bundle)
        assert new.secret() != old_secret and new.mqtt_password() != old_password

        assert not terminal_client(bundle, password=old_password).connect()
        client = terminal_client(bundle)
        assert client.connect()
        try:
            stale = signed_event(old_secret, site, device, seq=1)
            fresh = signed_event(new.secret(), site, device, seq=2)
            client.publish(events_topic(site, device), encode(stale))
            client.publish(events_topic(site, device), encode(fresh))
            stored = wait_for(lambda: stack.api(f"/api/v1/events?device={device}")["events"], 20, "the fresh event")
            rejects = wait_for(lambda: stack.api(f"/api/v1/rejects?device={device}")["rejects"], 20, "the reject")
        finally:
            client.close()
        assert [e["event_id"] for e in stored] == [fresh["event_id"]]
        assert [r["reason"] for r in rejects] == ["bad_signature"]


def test_a_client_certificate_is_the_terminals_identity_until_it_is_reissued(broker, tmp_path, db_url):
    device, other, site = unique("gate"), unique("gate"), unique("site")
    bundle = provision(broker, db_url, tmp_path / "gate", device, site, "--client-cert", url=broker.mtls_url)
    old_cert = (bundle / "client.crt").read_bytes(), (bundle / "client.key").read_bytes()
    ingest = ingest_client(broker)
    try:
        assert ingest.connect()
        ingest.subscribe(subscription("events"))

        def certificate_only() -> Client:
            return terminal_client(bundle, with_password=False)

        publish_as(certificate_only, events_topic(site, other), b"forged")
        publish_as(certificate_only, events_topic(site, device), b"control")
        wait_for(lambda: ingest.received(events_topic(site, device)), 10, "the certificate holder's event")
        assert ingest.received(events_topic(site, other)) == []
    finally:
        ingest.close()

    provision(broker, db_url, bundle, device, site, "--client-cert", url=broker.mtls_url)
    (tmp_path / "old.crt").write_bytes(old_cert[0])
    (tmp_path / "old.key").write_bytes(old_cert[1])
    old_identity = TlsFiles(broker.ca_file, tmp_path / "old.crt", tmp_path / "old.key")
    assert not Client(broker.mtls_url, tls=old_identity, v5=False).connect(), "the revoked certificate"
    renewed = terminal_client(bundle, with_password=False)
    assert renewed.connect()
    renewed.close()


def test_more_than_1000_messages_queued_for_an_offline_subscriber_all_arrive(broker, tmp_path, db_url):
    assert queued_and_delivered(broker, tmp_path, db_url, count=1500) == 1500


def test_control_mosquittos_default_queue_limit_would_drop_them(tmp_path, db_url):
    """Shows the test above can fail: the same run against the shipped config without its queue settings."""

    def default_queue_limits(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if not line.startswith("max_queued_")) + "\n"

    with shipped_broker(edit_config=default_queue_limits) as default_broker:
        out = default_broker.root / "ingest.password"
        args = ["mosquitto", "add-user", INGEST, "--out", str(out), "--broker-dir", str(default_broker.broker_dir)]
        assert main(args) == 0
        default_broker.reload()
        default_broker.ingest_password_file = out
        assert queued_and_delivered(default_broker, tmp_path, db_url, count=1500) < 1500


def queued_and_delivered(broker, tmp_path: Path, db_url: str, count: int) -> int:
    """Ingest's persistent session subscribes and goes offline, a terminal publishes ``count`` events, ingest
    comes back: how many distinct events reach it."""
    device, site = unique("gate"), unique("site")
    bundle = provision(broker, db_url, tmp_path / f"gate-{device}", device, site)
    session_id = unique("ingest-session")
    ingest = ingest_client(broker, client_id=session_id, session_expiry_s=3600)
    assert ingest.connect()
    ingest.subscribe(events_topic(site, device))
    ingest.close()
    terminal = terminal_client(bundle)
    assert terminal.connect()
    try:
        for i in range(count):
            terminal.publish(events_topic(site, device), f"event {i}".encode())
    finally:
        terminal.close()
    ingest = ingest_client(broker, client_id=session_id, session_expiry_s=3600)
    assert ingest.connect()
    try:
        # Wait until all arrived or none has arrived for 3 s: a dropping broker never reaches ``count``.
        last, last_change, deadline = -1, time.monotonic(), time.monotonic() + 60
        while (now := time.monotonic()) < deadline and (got := len(set(ingest.received()))) < count:
            if got != last:
                last, last_change = got, now
            elif now - last_change > 3:
                break
            time.sleep(0.05)
        return len(set(ingest.received()))
    finally:
        ingest.close()


def test_entries_of_mosquittos_own_tool_verify_with_ours(tmp_path):
    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd is part of the mosquitto package; install it"
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), "gate-1", "p4ss:word"], check=True, capture_output=True)
    entry = read_entries(path)["gate-1"]
    assert verify_password("p4ss:word", entry) and not verify_password("p4ss:wore", entry)


def test_a_service_user_name_cannot_be_provisioned_as_a_terminal(broker, tmp_path, db_url, capsys):
    args = ["devices", "provision", INGEST, "--site", unique("site"), "--out", str(tmp_path / "x"), "--db", db_url]
    args += [
        "--mqtt-url",
        broker.tls_url,
        "--server-url",
        "https://g.example.com",
        "--broker-dir",
        str(broker.broker_dir),
    ]
    before = broker.passwd.read_text()
    assert main(args) == 2
    assert "is a broker service user" in capsys.readouterr().err
    assert broker.passwd.read_text() == before
    assert stored_secret(db_url, INGEST) is None


@pytest.mark.parametrize(
    "extra, env, message",
    [
        ([], {}, "--broker-dir DIR or GUARDPOST_BROKER_DIR"),
        (["--broker-dir", "{tmp}/empty"], {}, "set --mqtt-url or GUARDPOST_TERMINAL_MQTT"),
        (
            ["--broker-dir", "{tmp}/empty"],
            {"GUARDPOST_TERMINAL_MQTT": "mqtts://b.example.com", "GUARDPOST_TERMINAL_SERVER": "https://s"},
            "no broker CA in {tmp}/empty: create it with 'guardpost mosquitto init-ca",
        ),
        (
            ["--broker-dir", "{tmp}/e", "--mqtt-url", "mqtt://b:1883", "--server-url", "https://s", "--client-cert"],
            {},
            "--client-cert needs an mqtts:// broker URL",
        ),
    ],
)
def test_provisioning_without_its_settings_says_what_to_set(tmp_path, db_url, capsys, monkeypatch, extra, env, message):
    for name in ("GUARDPOST_BROKER_DIR", "GUARDPOST_TERMINAL_MQTT", "GUARDPOST_TERMINAL_SERVER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["devices", "provision", "gate-1", "--site", "site-1", "--out", str(tmp_path / "out"), "--db", db_url]
    assert main(args + [a.format(tmp=tmp_path) for a in extra]) == 2
    error = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_terminal_name_cannot_become_a_service_user(broker, tmp_path, db_url, capsys):
    device = unique("gate")
    provision(broker, db_url, tmp_path / "gate", device, unique("site"))
    entry = read_entries(broker.passwd)[device]
    args = ["mosquitto", "add-user", device, "--out", str(tmp_path / "pw"), "--broker-dir", str(broker.broker_dir)]
    assert main(args) == 2
    assert "is already a broker user" in capsys.readouterr().err
    assert read_entries(broker.passwd)[device] == entry and not (tmp_path / "pw").exists()
