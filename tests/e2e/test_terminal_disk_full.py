"""Disk full on the terminal (a real, tiny tmpfs): a visible alarm, and every event stored before it survives."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from edge_agent.agent import Agent
from edge_agent.config import load_config
from edge_agent.feedback import Verdict
from edge_agent.gate import Recording
from edge_agent.outbox import Outbox, OutboxFull
from tests.support.terminal import write_config

DISK_MB = 4


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0700", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        reason = f"mounting a {DISK_MB} MB tmpfs needs root: {done.stderr.decode().strip()}"
        if os.environ.get("GUARDPOST_REQUIRE_ROOT_TESTS"):
            pytest.fail(reason)
        pytest.skip(reason + " (run as root, as CI does)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder, leave_bytes: int) -> None:
    """Fill the file system up to ``leave_bytes`` of free space with one file."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(folder / "filler", "ab") as filler:
        try:
            filler.write(b"\0" * max(0, free - leave_bytes))
        except OSError:
            pass  # tmpfs may round; full is full


def card_check_in(number: int) -> Recording:
    verdict = Verdict.accepted(f"Guard {number}")
    return Recording("check_in", "card", f"G-{number}", None, None, "GD20****0001", None, verdict)


def test_a_terminal_refuses_to_record_on_a_full_disk_with_an_alarm_and_keeps_earlier_events(tmp_path, tiny_disk):
    config_path = write_config(
        tiny_disk / "terminal",
        site_id="site-a",
        device_id="gate-1",
        secret="s" * 64,
        mqtt_url="mqtt://127.0.0.1:9",  # never started: the network is not the subject here
        server_url="http://127.0.0.1:9",
        frames=tmp_path,
        extra="[outbox]\nmin_free_mb = 1\n",
    )
    agent = Agent(load_config(config_path), reader=None)
    try:
        stored = [agent.record(card_check_in(n)) for n in range(20)]
        assert all(stored) and agent.outbox.depth() == 20
        fill(tiny_disk, leave_bytes=256 * 1024)
        assert agent.record(card_check_in(99)) is None  # refused, and the guard is told so
        assert "outbox" in agent.alarms and "MB free" in agent.alarms["outbox"]
        heartbeat = json.loads(agent._heartbeat())
        assert any(alarm.startswith("outbox: ") for alarm in heartbeat["alarms"])
        assert agent.outbox.depth() == 20
        os.remove(tiny_disk / "filler")
        assert agent.record(card_check_in(21))["seq"] == 21  # the freed disk takes events again, no seq lost
        assert "outbox" not in agent.alarms
    finally:
        agent.outbox.close()


def test_sqlite_running_out_of_disk_is_an_outbox_full_error_and_loses_nothing(tiny_disk):
    outbox = Outbox(tiny_disk / "outbox.sqlite3", min_free_mb=0)
    appended = 0
    try:
        with pytest.raises(OutboxFull, match="disk is full"):
            for n in range(100_000):
                outbox.append(lambda seq: {"event_id": str(uuid.uuid4()), "seq": seq, "pad": "x" * 2000})
                appended = n + 1
        assert appended > 100
    finally:
        outbox.close()
    reopened = Outbox(tiny_disk / "outbox.sqlite3", min_free_mb=0)
    try:
        due = reopened.due(resend_after_s=0, limit=appended + 10)
        assert [item.seq for item in due] == list(range(1, appended + 1))
    finally:
        reopened.close()
