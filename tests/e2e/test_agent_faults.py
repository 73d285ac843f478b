"""Kill the agent with SIGKILL and the broker mid-stream: every captured event reaches the server exactly once."""

from __future__ import annotations

import random
import signal
import sqlite3
import time

import pytest

from protocol.faults import CRASH_AT_ENV, CRASH_MARKER_ENV, POINTS
from tests.support.brokers import RestartableBroker
from tests.support.services import wait_for
from tests.support.stack import running_stack, unique
from tests.support.terminal import (
    agent_log,
    enrol_sample_guards,
    gate_frames,
    outbox_depth,
    start_agent,
    stop_process,
    write_config,
)

pytestmark = pytest.mark.slow


def captured(config) -> int:
    """How many events the terminal has ever captured: its sequence counter never goes back."""
    path = config.parent / "state" / "outbox.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0] - 1
        except (sqlite3.OperationalError, TypeError):
            return 0


def stored_seqs(stack, device) -> list[int]:
    seqs, cursor = [], None
    while True:
        page = stack.api(f"/api/v1/events?device={device}&limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        seqs += [e["seq"] for e in page["events"]]
        if not (cursor := page["next_cursor"]):
            return sorted(seqs)


@pytest.fixture
def broker(tmp_path):
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def terminal(tmp_path, broker, db_url):
    with running_stack(tmp_path / "server", broker.url, db_url) as stack:
        site, device = unique("site"), unique("gate")
        secret = stack.add_device(site, device)
        enrol_sample_guards(stack, site)
        frames, expected = gate_frames(tmp_path / "frames")
        config = write_config(
            tmp_path / "terminal",
            site_id=site,
            device_id=device,
            secret=secret,
            mqtt_url=broker.url,
            server_url=stack.http_url,
            frames=frames,
            max_fps=5,  # slow enough that the kills land mid-stream
        )
        yield stack, device, config, len(expected)


def test_agent_killed_at_random_moments_loses_and_duplicates_nothing(terminal):
    stack, device, config, per_pass = terminal
    rng = random.Random(20261124)
    for _ in range(4):
        before = captured(config)
        agent = start_agent(config)
        # Once it captures (a loaded machine takes seconds just to import dlib), kill it somewhere
        # mid-stream: before, during or after outbox writes, publishes and acks.
        started = lambda before=before, agent=agent: captured(config) > before or agent.poll() is not None  # noqa: E731
        wait_for(started, 90, "the agent to capture")
        time.sleep(rng.uniform(0.0, 2.0))
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
    assert captured(config) > 0
    agent = start_agent(config, "--exit-when-drained")
    try:
        assert agent.wait(timeout=180) == 0, agent_log(config).read_text()[-3000:]
    finally:
        stop_process(agent)
    total = captured(config)
    assert total >= per_pass  # the last run at least went through every frame
    assert stored_seqs(stack, device) == list(range(1, total + 1))
    assert outbox_depth(config) == 0


@pytest.mark.parametrize("point", POINTS)
def test_agent_killed_at_each_step_stores_every_captured_event_once(terminal, point, tmp_path):
    stack, device, config, per_pass = terminal
    marker = tmp_path / f"crashed-{point}"
    agent = start_agent(config, env_extra={CRASH_AT_ENV: point, CRASH_MARKER_ENV: str(marker)})
    try:
        assert agent.wait(timeout=120) == -signal.SIGKILL, agent_log(config).read_text()[-3000:]
    finally:
        stop_process(agent)
    assert marker.read_text() == point
    # The first check-in dies before its write (nothing captured) or right after it (exactly one); a publish
    # comes after at least one write.
    expected = {"before_outbox_write": range(0, 1), "after_outbox_write": range(1, 2)}
    assert captured(config) in expected.get(point, range(1, per_pass + 1))
    agent = start_agent(config, "--exit-when-drained")
    try:
        assert agent.wait(timeout=180) == 0, agent_log(config).read_text()[-3000:]
    finally:
        stop_process(agent)
    total = captured(config)
    assert total >= per_pass
    assert stored_seqs(stack, device) == list(range(1, total + 1))
    assert outbox_depth(config) == 0


def test_broker_killed_mid_stream_delivers_every_event_once(terminal, broker):
    stack, device, config, per_pass = terminal
    agent = start_agent(config, "--exit-when-drained")
    try:
        wait_for(lambda: captured(config) >= per_pass // 3, 60, "the first events")
        broker.kill()  # SIGKILL: queued and in-flight messages at the broker may be lost
        wait_for(lambda: captured(config) >= per_pass * 2 // 3, 60, "capture to go on while the broker is down")
        time.sleep(1.0)
        broker.start()
        assert agent.wait(timeout=180) == 0, agent_log(config).read_text()[-3000:]
    finally:
        stop_process(agent)
    assert captured(config) == per_pass
    wait_for(lambda: len(stored_seqs(stack, device)) == per_pass, 30, "every event stored")
    assert stored_seqs(stack, device) == list(range(1, per_pass + 1))
    assert outbox_depth(config) == 0
