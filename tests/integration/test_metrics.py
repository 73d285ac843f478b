"""GET /metrics over real HTTP after real ingest: counts from the database, parsed by Prometheus' own parser."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, date, timedelta

import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from protocol.events import build_heartbeat, build_status, encode
from protocol.topics import events_topic, heartbeat_topic, status_topic
from server import registry, users
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.duty.service import mark_dirty
from server.duty.tables import DutyDirty
from server.lookup_digests import ServerCipher
from server.metrics_access import TOKEN_ENV, TOKEN_FILE_ENV
from server.models import Event, Finding, Reject, Terminal, utcnow
from server.web import create_app
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.services import wait_for
from tests.support.stack import unique

SCRAPE_TOKEN = "s" * 40


def scrape(url: str, token: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_follow_what_ingest_stored(stack, mqtt_url):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    with stack.sessions() as s:
        registry.add_device(s, site, unique("idle"))
        s.add(Finding(key=unique("f"), kind="sequence_gap", detail="test", site_id=site))
        s.add(Finding(key=unique("f"), kind="sequence_gap", detail="test", resolved_at=utcnow()))
        mark_dirty(s, [(site, date(2026, 4, 1)), (site, date(2026, 4, 2))])
        s.commit()
    client = TestClient(mqtt_url)
    try:
        client.publish(status_topic(site, device), build_status("online"), retain=True)
        client.publish(
            heartbeat_topic(site, device),
            build_heartbeat(outbox_depth=7, clock_synced=False, version="0.1.0", alarms=["disk nearly full"]),
        )
        for seq in (1, 2, 3):
            client.publish(events_topic(site, device), encode(signed_event(secret, site, device, seq=seq)))
        client.publish(events_topic(site, device), encode(signed_event("not-the-secret", site, device, seq=4)))
        stranger = unique("stranger")
        client.publish(events_topic(site, stranger), encode(signed_event(secret, site, stranger, seq=5)))

        def settled():
            with stack.sessions() as s:
                reasons = set(s.scalars(select(Reject.reason).where(Reject.device_id.in_([device, stranger]))))
                events = s.scalar(select(func.count(Event.id)))
                return (
                    reasons == {"bad_signature", "unknown_terminal"}
                    and events == 3
                    and s.get(Terminal, device).heartbeat
                )

        wait_for(settled, what="ingest to store events, rejects and the heartbeat")
    finally:
        client.publish(status_topic(site, device), b"", retain=True)
        client.close()
    # A shared broker may carry other tests' traffic (rejected here as unknown terminals): stop ingest so the
    # database holds still, and compare with it.
    stack.ingest.stop()
    with stack.sessions() as s:
        rejects = dict(s.execute(select(Reject.reason, func.count()).group_by(Reject.reason)).all())

    status, content_type, body = scrape(stack.http_url, stack.token)  # the stack's user is an admin
    assert status == 200 and content_type == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(body)
    labels = (("device_id", device), ("site_id", site))
    assert got[("guardpost_events_stored_total", ())] == 3
    assert got[("guardpost_events_stored_last_minute", ())] == 3
    assert {lbl[0][1]: n for (name, lbl), n in got.items() if name == "guardpost_rejects_total"} == rejects
    assert rejects["bad_signature"] >= 1 and rejects["unknown_terminal"] >= 1
    assert got[("guardpost_terminal_outbox_depth", labels)] == 7
    assert got[("guardpost_terminal_clock_synced", labels)] == 0
    assert got[("guardpost_terminal_alarms", labels)] == 1
    assert got[("guardpost_terminal_online", labels)] == 1
    assert abs(got[("guardpost_terminal_last_seen_timestamp_seconds", labels)] - time.time()) < 60
    assert got[("guardpost_terminals", (("state", "online"),))] == 1
    assert got[("guardpost_terminals", (("state", "offline"),))] == 1
    assert got[("guardpost_findings_open", (("kind", "sequence_gap"),))] == 1
    with stack.sessions() as s:  # ingest queues the events' own day too
        queued = s.scalar(select(func.count()).select_from(DutyDirty))
        oldest = s.scalar(select(func.min(DutyDirty.marked_at)))
    assert queued >= 2 and got[("guardpost_duty_recompute_queue", ())] == queued
    assert got[("guardpost_duty_recompute_oldest_timestamp_seconds", ())] == oldest.replace(tzinfo=UTC).timestamp()
    assert got[("guardpost_metrics_collect_seconds", ())] >= 0

    # Stored events older than a minute leave the last-minute gauge but stay in the counter.
    with stack.sessions() as s:
        s.query(Event).update({Event.received_at: utcnow() - timedelta(minutes=5)})
        s.commit()
    again = samples(scrape(stack.http_url, stack.token)[2])
    assert again[("guardpost_events_stored_last_minute", ())] == 0
    assert again[("guardpost_events_stored_total", ())] == 3


@pytest.fixture
def app_for(db_url, monkeypatch):
    engines = []

    def build(**env: str):
        for name in (TOKEN_ENV, TOKEN_FILE_ENV):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        engine = make_engine(db_url)
        engines.append(engine)
        app = create_app(ServerSettings(db_url=db_url), engine=engine, cipher=ServerCipher(Fernet.generate_key()))
        with make_sessionmaker(engine)() as s:
            site = registry.ensure_site(s, unique("metrics-site")).site_id
            scopes = {"admin": {}, "supervisor": {"site_ids": [site]}, "police": {"jurisdiction": "44"}}
            tokens = {role: users.add_user(s, unique(role), role, **scope)[1] for role, scope in scopes.items()}
            s.commit()
        return app.test_client(), tokens

    yield build
    for engine in engines:
        engine.dispose()


def get(client, token: str | None):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})


def test_scrape_token_from_env_or_admin_token_only(app_for):
    client, tokens = app_for(**{TOKEN_ENV: SCRAPE_TOKEN})
    assert get(client, SCRAPE_TOKEN).status_code == 200
    assert get(client, tokens["admin"]).status_code == 200
    for role in ("supervisor", "police"):
        assert get(client, tokens[role]).status_code == 403
    for token in (None, "wrong", SCRAPE_TOKEN[:-1], SCRAPE_TOKEN + "x"):
        response = get(client, token)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert get(client, SCRAPE_TOKEN).headers["Cache-Control"] == "no-store"


def test_without_a_configured_token_only_admins_scrape(app_for):
    client, tokens = app_for()
    assert get(client, tokens["admin"]).status_code == 200
    assert get(client, "").status_code == 401


def test_scrape_token_from_a_file(app_for, tmp_path):
    path = tmp_path / "metrics.token"
    path.write_text(SCRAPE_TOKEN + "\n")
    client, _ = app_for(**{TOKEN_FILE_ENV: str(path)})
    assert get(client, SCRAPE_TOKEN).status_code == 200


def test_a_bad_token_setting_stops_the_app(app_for, tmp_path):
    from server.config import ConfigError

    with pytest.raises(ConfigError, match="at least 24 characters"):
        app_for(**{TOKEN_ENV: "short"})
    with pytest.raises(ConfigError, match="cannot read the metrics token file"):
        app_for(**{TOKEN_FILE_ENV: str(tmp_path / "missing")})
