"""A camera-less terminal for load and fault tests: the agent's real outbox and publisher, card check-ins at a rate.

Run as ``python -m tests.support.sim_terminal DEVICE SITE SECRET_FILE MQTT_URL STATE_DIR COUNT RATE``; it
captures COUNT events in all (a restart carries on from the outbox's sequence) and exits 0 once the server
has acked every one of them.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from protocol.events import build_event

RESEND_AFTER_S = 5.0
DRAIN_TIMEOUT_S = 240.0


def main(argv: list[str]) -> int:
    device, site, secret_file, mqtt_url, state_dir, count, rate = argv
    secret = Path(secret_file).read_text().strip()
    outbox = Outbox(Path(state_dir) / "outbox.sqlite3", min_free_mb=1)
    publisher = Publisher(device, site, mqtt_url, outbox)
    publisher.start()
    captured = outbox.next_seq() - 1
    interval, deadline = 1.0 / float(rate), time.monotonic() + DRAIN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if captured < int(count):
                outbox.append(
                    lambda seq: build_event(
                        secret=secret,
                        device_id=device,
                        site_id=site,
                        seq=seq,
                        type="check_in",
                        method="card",
                        guard_id=f"G-{seq % 50}",
                        captured_at=datetime.now(UTC),
                        clock_synced=True,
                        match=None,
                        evidence_sha256=None,
                        card_number_masked="GD20****0001",
                    )
                )
                captured += 1
            elif outbox.depth() == 0:
                return 0
            publisher.flush(RESEND_AFTER_S)
            time.sleep(interval)
        print(f"{device}: {outbox.depth()} event(s) still unacked after {DRAIN_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    finally:
        publisher.stop()
        outbox.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
