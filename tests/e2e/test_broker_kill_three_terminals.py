"""1,000 check-ins from 3 terminals, broker SIGKILLed mid-stream and restarted: each stored once, outboxes empty."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from server.models import Event
from tests.support.brokers import RestartableBroker
from tests.support.services import wait_for
from tests.support.stack import running_stack, unique

pytestmark = pytest.mark.slow

COUNTS = (334, 333, 333)
RATE = 120  # check-ins per second per terminal: a shift change at a big site, compressed


@pytest.fixture
def broker(tmp_path):
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


def start_terminal(tmp_path, stack, broker, site: str, device: str, count: int) -> subprocess.Popen:
    folder = tmp_path / device
    folder.mkdir()
    (folder / "secret").write_text(stack.add_device(site, device))
    args = [device, site, str(folder / "secret"), broker.url, str(folder), str(count), str(RATE)]
    log = open(folder / "terminal.log", "wb")  # noqa: SIM115 -- closed with the process below
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.sim_terminal", *args], stdout=log, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def outbox_depth(folder) -> int:
    with sqlite3.connect(folder / "outbox.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]


def test_broker_killed_mid_stream_of_1000_check_ins_from_3_terminals(tmp_path, broker, db_url):
    with running_stack(tmp_path / "server", broker.url, db_url) as stack:
        site = unique("site")
        devices = [unique(f"gate{n}") for n in range(len(COUNTS))]

        def stored() -> int:
            with stack.sessions() as s:
                return s.scalar(select(func.count()).select_from(Event).where(Event.device_id.in_(devices)))

        terminals = [start_terminal(tmp_path, stack, broker, site, d, c) for d, c in zip(devices, COUNTS, strict=True)]
        try:
            wait_for(lambda: stored() >= 200, 60, "the first 200 check-ins stored")
            broker.kill()  # SIGKILL: whatever the broker held in memory is gone
            broker.start()
            for proc in terminals:
                assert proc.wait(timeout=300) == 0, tmp_path / "terminal.log"
        finally:
            for proc in terminals:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.log.close()
        wait_for(lambda: stored() == sum(COUNTS), 30, "every check-in stored")
        with stack.sessions() as s:
            rows = s.execute(select(Event.device_id, Event.seq, Event.event_id).where(Event.device_id.in_(devices)))
            rows = rows.all()
        assert len({r.event_id for r in rows}) == sum(COUNTS)
        for device, count in zip(devices, COUNTS, strict=True):
            assert sorted(r.seq for r in rows if r.device_id == device) == list(range(1, count + 1))
            assert outbox_depth(tmp_path / device) == 0
