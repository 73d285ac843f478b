"""Through a real broker: signed events land in the API once, bad ones become rejects, terminals get acks."""

from __future__ import annotations

import json
import time

import pytest

from protocol.events import encode, parse_ack
from protocol.topics import acks_topic, events_topic
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for
from tests.support.stack import unique


@pytest.fixture
def terminal(stack, mqtt_url):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    client = TestClient(mqtt_url)
    client.subscribe(acks_topic(site, device))
    time.sleep(0.2)  # let the subscription settle before anything is acked
    yield site, device, secret, client
    client.close()


def acked_ids(client: TestClient, site: str, device: str) -> list[str]:
    return [i for payload in client.received(acks_topic(site, device)) for i in parse_ack(payload)]


def test_signed_event_appears_in_the_api_and_is_acked(stack, terminal):
    site, device, secret, client = terminal
    event = signed_event(secret, site, device, seq=1, guard_id="G-7")
    client.publish(events_topic(site, device), encode(event))
    found = wait_for(lambda: stack.api(f"/api/v1/events?device={device}")["events"], what="event in the API")
    assert [e["event_id"] for e in found] == [event["event_id"]]
    assert found[0]["guard_id"] == "G-7" and found[0]["site_id"] == site
    wait_for(lambda: event["event_id"] in acked_ids(client, site, device), what="ack to the terminal")


def test_same_event_twice_is_stored_once_and_acked_twice(stack, terminal):
    site, device, secret, client = terminal
    payload = encode(signed_event(secret, site, device, seq=1))
    client.publish(events_topic(site, device), payload)
    client.publish(events_topic(site, device), payload)
    wait_for(lambda: len(acked_ids(client, site, device)) == 2, what="two acks")
    assert len(stack.api(f"/api/v1/events?device={device}")["events"]) == 1


def test_bad_messages_are_recorded_and_a_valid_one_still_lands(stack, terminal):
    site, device, secret, client = terminal
    topic = events_topic(site, device)
    client.publish(topic, encode(signed_event("not-the-secret", site, device, seq=1)))
    client.publish(topic, b'{"schema": "guardpost.event.v1", "seq": ')
    client.publish(topic, encode({**signed_event(secret, site, device, seq=2), "schema": "guardpost.event.v9"}))
    good = signed_event(secret, site, device, seq=3)
    client.publish(topic, encode(good))
    events = wait_for(lambda: stack.api(f"/api/v1/events?device={device}")["events"], what="the valid event")
    assert [e["event_id"] for e in events] == [good["event_id"]]
    rejects = wait_for(
        lambda: len(r := stack.api(f"/api/v1/rejects?device={device}")["rejects"]) == 3 and r, what="3 rejects"
    )
    assert sorted(r["reason"] for r in rejects) == ["bad_signature", "malformed_json", "unsupported_schema"]
    assert all(r["topic"] == topic for r in rejects)
    assert acked_ids(client, site, device) == [good["event_id"]]


def test_events_api_filters_and_pages(stack, terminal):
    site, device, secret, client = terminal
    sent = [signed_event(secret, site, device, seq=i, guard_id=f"G-{i % 2}") for i in range(1, 8)]
    for event in sent:
        client.publish(events_topic(site, device), encode(event))
    wait_for(lambda: len(stack.api(f"/api/v1/events?device={device}")["events"]) == 7, what="7 events")
    seen, cursor = [], None
    while True:
        page = stack.api(f"/api/v1/events?device={device}&limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += [e["seq"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    only_g1 = stack.api(f"/api/v1/events?device={device}&guard=G-1")["events"]
    assert sorted(e["seq"] for e in only_g1) == [1, 3, 5, 7]
    assert json.loads(json.dumps(only_g1))  # plain JSON all the way
