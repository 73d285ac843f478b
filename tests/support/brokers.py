"""A broker a test may kill and restart: a private Mosquitto when installed, else the embedded one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from guardpost.broker import free_port
from tests.support.services import port_open, start_embedded_broker, wait_for


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
        folder.mkdir(parents=True, exist_ok=True)
        if self._binary:
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
            wait_for(lambda: port_open("127.0.0.1", self.port), 20, f"mosquitto on port {self.port}")
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
