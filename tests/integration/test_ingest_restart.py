"""Ingest down while terminals publish: its persistent session makes the broker keep the events for it."""

from __future__ import annotations

import time

from protocol.events import encode
from protocol.topics import events_topic
from server.mqtt_ingest import IngestService, wait_connected
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for
from tests.support.stack import unique


def test_events_published_while_ingest_is_down_are_stored_after_restart(stack, mqtt_url):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    stack.ingest.stop()
    client = TestClient(mqtt_url)
    sent = [signed_event(secret, site, device, seq=i) for i in range(1, 6)]
    for event in sent:
        client.publish(events_topic(site, device), encode(event))
    client.close()
    time.sleep(0.5)
    assert stack.api(f"/api/v1/events?device={device}")["events"] == []
    stack.ingest = IngestService(stack.settings, stack.sessions)  # same client id: same broker session
    stack.ingest.start()
    assert wait_connected(stack.ingest, 20)
    stored = wait_for(
        lambda: len(e := stack.api(f"/api/v1/events?device={device}")["events"]) == 5 and e, 30, "5 queued events"
    )
    assert sorted(e["seq"] for e in stored) == [1, 2, 3, 4, 5]
