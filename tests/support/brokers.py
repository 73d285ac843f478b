"""A broker a test may kill and restart: a private Mosquitto when installed, else the embedded one; and a
private Mosquitto running the shipped production config (deploy/mosquitto/) with only paths and ports rewritten."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from guardpost.broker import free_port
from tests.support.services import port_open, start_embedded_broker, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
SHIPPED_CONFIG = DEPLOY / "mosquitto.conf"
SHIPPED_ACL = DEPLOY / "acl"
# Where the shipped config expects its files on a production host.
PRODUCTION_BROKER_DIR = "/etc/mosquitto/guardpost/"
PRODUCTION_DATA_DIRS = ("/var/lib/mosquitto/", "/var/log/mosquitto/")
PLAIN, TLS, MTLS = 1883, 8883, 8884  # the shipped listeners


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


class RestartableBroker:
    """Owns its own broker process on a free port, so killing it never disturbs other tests."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._binary = mosquitto_binary()
        self._folder = folder
        self._proc: subprocess.Popen | None = None
        self._ports = [self.port]
        folder.mkdir(parents=True, exist_ok=True)
        if self._binary:
            self._write_config()

    def _write_config(self) -> None:
        folder = self._folder
        (folder / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            # Mosquitto's default drops QoS 1 messages past 1000 queued for one client.
            "max_queued_messages 0\n"
            "log_dest none\n"
        )

    @property
    def kind(self) -> str:
        return "mosquitto" if self._binary else "amqtt"

    def start(self) -> None:
        if self._binary:
            self._proc = subprocess.Popen(
                [self._binary, "-c", str(self._folder / "mosquitto.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in self._ports:
                wait_for(lambda p=port: port_open("127.0.0.1", p), 20, f"mosquitto on port {port}")
        else:
            self._proc = start_embedded_broker(self.port)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, no final save."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._proc = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file, ACL and CRL."""
        assert self._proc is not None and self._proc.poll() is None, "the broker is not running"
        self._proc.send_signal(signal.SIGHUP)


def rewrite_shipped_config(text: str, paths: dict[str, str], ports: dict[int, int]) -> str:
    """The shipped config with production paths replaced and each listener moved to a free loopback port."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["listener"]:
            line = f"listener {ports[int(words[1])]} 127.0.0.1"
        else:
            for production, local in paths.items():
                line = line.replace(production, local)
        lines.append(line)
    return "\n".join(lines) + "\n"


class ShippedBroker(RestartableBroker):
    """Mosquitto with deploy/mosquitto/mosquitto.conf and acl, its CA made by `guardpost mosquitto init-ca`.

    Run as root, Mosquitto drops to the mosquitto user (as in production), so ``root`` must be a folder that
    user can reach: the files get the same owner and modes as on a production broker.
    """

    def __init__(self, root: Path, edit_config: Callable[[str], str] | None = None):
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("the broker security tests need Mosquitto 2 (apt install mosquitto); none on PATH")
        self.root = root
        self.broker_dir = root / "broker"
        self.data_dir = root / "data"
        self.ports = {listener: free_port() for listener in (PLAIN, TLS, MTLS)}
        from guardpost.cli import main

        assert main(["mosquitto", "init-ca", "--broker-dir", str(self.broker_dir), "--host", "localhost"]) == 0
        shutil.copyfile(SHIPPED_ACL, self.broker_dir / "acl")
        self.data_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("mosquitto")
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        paths = {PRODUCTION_BROKER_DIR: f"{self.broker_dir}/"}
        paths.update({folder: f"{self.data_dir}/" for folder in PRODUCTION_DATA_DIRS})
        self.config_text = rewrite_shipped_config(SHIPPED_CONFIG.read_text(), paths, self.ports)
        if edit_config is not None:  # only for control experiments that show what the shipped settings prevent
            self.config_text = edit_config(self.config_text)
        super().__init__(root)
        self.port = self.ports[PLAIN]
        self._ports = list(self.ports.values())
        self.url = f"mqtt://localhost:{self.ports[PLAIN]}"
        self.tls_url = f"mqtts://localhost:{self.ports[TLS]}"
        self.mtls_url = f"mqtts://localhost:{self.ports[MTLS]}"

    def _write_config(self) -> None:
        (self.root / "mosquitto.conf").write_text(self.config_text)

    @property
    def ca_file(self) -> Path:
        return self.broker_dir / "ca.crt"

    @property
    def passwd(self) -> Path:
        return self.broker_dir / "passwd"

    def log(self) -> str:
        path = self.data_dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        try:
            super().start()
        except AssertionError as exc:
            raise AssertionError(f"{exc}; mosquitto log:\n{self.log()[-2000:]}") from None

    def reload(self) -> None:
        """SIGHUP, then wait until Mosquitto says it re-read its config (password file, ACL, CRL)."""
        before = self.log().count("Reloading config")
        super().reload()
        wait_for(lambda: self.log().count("Reloading config") > before, 10, "mosquitto to reload")


@contextmanager
def shipped_broker(edit_config: Callable[[str], str] | None = None) -> Iterator[ShippedBroker]:
    root = Path(tempfile.mkdtemp(prefix="guardpost-broker-"))
    try:
        root.chmod(0o711)  # the mosquitto user may pass through, not list
        broker = ShippedBroker(root, edit_config)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
