"""Embedded MQTT broker (amqtt) for demos and tests on machines without Mosquitto."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def broker_config(host: str, port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 200}},
        "plugins": {
            # Loopback-only demo/test broker: any client that names itself is let in. amqtt keeps QoS 1
            # messages for offline persistent sessions only when the client is not anonymous.
            # Production uses Mosquitto with per-terminal credentials.
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        },
    }


def run_broker(host: str = "127.0.0.1", port: int = 1883) -> int:
    """Run until SIGINT/SIGTERM; returns a process exit code."""
    from amqtt.broker import Broker  # vendor import kept here: only the embedded broker needs it

    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)

    async def main() -> None:
        broker = Broker(broker_config(host, port))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await broker.start()
        print(f"embedded MQTT broker listening on mqtt://{host}:{port}", flush=True)
        await stop.wait()
        await broker.shutdown()

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"error: cannot start the embedded broker on {host}:{port}: {exc.strerror}; choose another --port")
        return 2
    return 0
