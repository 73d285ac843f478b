"""A real agent process verifies sample faces and delivers through a real broker, even one that was down."""

from __future__ import annotations

import signal

import pytest

from guardpost.broker import free_port
from server.config import parse_mqtt_url
from server.credentials import add_credential
from server.registry import add_guard
from tests.support.services import wait_for
from tests.support.stack import unique
from tests.support.tcp_proxy import TcpProxy
from tests.support.terminal import (
    agent_log,
    clear_retained_status,
    enrol_sample_guards,
    gate_frames,
    outbox_depth,
    start_agent,
    stop_process,
    write_config,
)

pytestmark = pytest.mark.slow


def _events(stack, device):
    events, cursor = [], None
    while True:
        page = stack.api(f"/api/v1/events?device={device}&limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        events += page["events"]
        if not (cursor := page["next_cursor"]):
            return events


def test_agent_started_while_broker_down_delivers_its_backlog_once(stack, mqtt_url, tmp_path):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    guards = enrol_sample_guards(stack, site)
    frames, expected = gate_frames(tmp_path / "frames")
    proxy = TcpProxy(
        free_port(), parse_mqtt_url(mqtt_url).address
    )  # the terminal's only way to the broker: down for now
    config = write_config(
        tmp_path / "terminal",
        site_id=site,
        device_id=device,
        secret=secret,
        mqtt_url=f"mqtt://127.0.0.1:{proxy.port}",
        server_url=stack.http_url,
        frames=frames,
    )
    agent = start_agent(config, "--exit-when-drained")
    try:
        wait_for(lambda: outbox_depth(config) == len(expected), 120, f"{len(expected)} events in the outbox")
        assert _events(stack, device) == []
        proxy.start()
        assert agent.wait(timeout=120) == 0, agent_log(config).read_text()
    finally:
        stop_process(agent)
        proxy.stop()
        clear_retained_status(mqtt_url, site, device)
    events = sorted(_events(stack, device), key=lambda e: e["seq"])
    assert [e["seq"] for e in events] == list(range(1, len(expected) + 1))
    assert len({e["event_id"] for e in events}) == len(expected)
    assert [guards.get(e["guard_id"]) for e in events] == expected
    assert all(e["type"] == "check_in" and e["method"] == "face" for e in events)
    assert outbox_depth(config) == 0


def test_unknown_face_is_denied_not_matched(stack, mqtt_url, tmp_path):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    frames, expected = gate_frames(tmp_path / "frames")  # nobody enrolled at this site: every face is a stranger
    config = write_config(
        tmp_path / "terminal",
        site_id=site,
        device_id=device,
        secret=secret,
        mqtt_url=mqtt_url,
        server_url=stack.http_url,
        frames=frames,
        max_frames=1,  # every stranger's frame is its own refusal
    )
    agent = start_agent(config, "--exit-when-drained")
    try:
        assert agent.wait(timeout=120) == 0, agent_log(config).read_text()
    finally:
        stop_process(agent)
        clear_retained_status(mqtt_url, site, device)
    events = _events(stack, device)
    assert len(events) == len(expected)
    assert all(e["type"] == "denied" and e["guard_id"] is None and e["method"] == "face" for e in events)


def test_card_only_terminal_records_card_check_ins(stack, mqtt_url, tmp_path):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    with stack.sessions() as session:
        add_guard(session, "G-CARD", "Wang Fang", [site])  # no face consent needed for a card
        add_credential(session, stack.cipher, "G-CARD", "GD2024000777", kind="certificate")
        session.commit()
    reads = tmp_path / "reads.txt"
    reads.write_text("GD2024000777\nXX0000000001\n")
    config = write_config(
        tmp_path / "terminal",
        site_id=site,
        device_id=device,
        secret=secret,
        mqtt_url=mqtt_url,
        server_url=stack.http_url,
        frames=tmp_path,
        extra=f'[cards]\nreader = "lines:{reads}"\n',
    )
    config.write_text('mode = "card"\n' + config.read_text())
    agent = start_agent(config)
    try:
        events = wait_for(lambda: len(e := _events(stack, device)) == 2 and e, 60, "two card events")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0, agent_log(config).read_text()
    finally:
        stop_process(agent)
        clear_retained_status(mqtt_url, site, device)
    accepted, denied = sorted(events, key=lambda e: e["seq"])
    assert (accepted["type"], accepted["method"], accepted["guard_id"]) == ("check_in", "card", "G-CARD")
    assert accepted["card"] == {"number_masked": "GD******0777"} and accepted["match"] is None
    assert (denied["type"], denied["method"], denied["guard_id"]) == ("denied", "card", None)
    log = agent_log(config).read_text()
    assert "GD2024000777" not in log and "XX0000000001" not in log  # numbers are never logged in clear
