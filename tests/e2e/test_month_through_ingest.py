"""A scripted month for 50 guards on 5 sites and 3 shifts, sent as signed events through the real broker
and ingest into the real database: the duty log counts match the script exactly."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from protocol.events import build_event, encode
from protocol.topics import events_topic
from server.duty.service import import_roster, import_shifts, recompute
from server.duty.tables import DutyRecordRow
from server.models import Event, Finding
from tests.support.month import scripted_month
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for

pytestmark = pytest.mark.slow
CHUNK = 250


def signed(p: dict, seq: int, secret: str) -> bytes:
    face = p["method"] == "face"
    return encode(
        build_event(
            secret=secret,
            device_id=p["device_id"],
            site_id=p["site_id"],
            seq=seq,
            type=p["type"],
            method=p["method"],
            guard_id=p["guard_id"],
            captured_at=p["at"],
            clock_synced=True,
            match={"distance": p["distance"], "margin": None, "frames": 2, "liveness": p["liveness"]} if face else None,
            card_number_masked=None if face else "GD******0001",
            evidence_sha256=None,
        )
    )


def test_scripted_month_through_broker_and_ingest(stack, mqtt_url):
    month = scripted_month()
    with stack.sessions() as session:
        import_shifts(session, month.shifts_csv())
        import_roster(session, month.roster_csv())
        session.commit()
    secrets = {device: stack.add_device(site, device) for site, device in month.devices.items()}
    seqs: Counter[str] = Counter()
    devices = list(month.devices.values())

    def stored() -> int:
        with stack.sessions() as session:
            return session.scalar(select(func.count()).select_from(Event).where(Event.device_id.in_(devices)))

    client = TestClient(mqtt_url)
    try:
        # In chunks, as terminals' outboxes would: a stock Mosquitto drops QoS 1 messages queued for a
        # subscriber beyond max_queued_messages (1000), and this test publishes without resending.
        for start in range(0, len(month.punches), CHUNK):
            for p in month.punches[start : start + CHUNK]:
                seqs[p["device_id"]] += 1
                payload = signed(p, seqs[p["device_id"]], secrets[p["device_id"]])
                client.client.publish(events_topic(p["site_id"], p["device_id"]), payload, qos=1)
            sent = min(start + CHUNK, len(month.punches))
            wait_for(lambda sent=sent: stored() == sent, 120, f"{sent} events stored")
    finally:
        client.close()
    with stack.sessions() as session:
        recompute(session, month.sites, month.first_date, month.last_date, month.now)
        session.commit()
        statuses = Counter(session.scalars(select(DutyRecordRow.status)))
        worked = sum(session.scalars(select(DutyRecordRow.minutes_worked)))
        overtime = sum(session.scalars(select(DutyRecordRow.overtime_minutes)))
        kinds = Counter(session.scalars(select(Finding.kind)))
    assert dict(statuses) == dict(month.expected.statuses)
    assert (worked, overtime) == (month.expected.minutes_worked, month.expected.overtime_minutes)
    assert kinds["missed_patrol"] == month.expected.missed_patrols
    assert kinds["handover_gap"] == month.expected.handover_gaps
