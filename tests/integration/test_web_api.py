"""Web API and dashboard: auth, events paging and filters, live duty board, terminal gallery sync."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, update

from protocol.gallery import DEVICE_HEADER, MAX_CLOCK_SKEW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_gallery
from protocol.signing import request_signature
from server import registry, users
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.lookup_digests import ServerCipher
from server.models import Event, Reject, Terminal, utcnow
from server.web import create_app
from tests.support.web import login

GALLERY_PATH = "/api/v1/terminal/gallery"


SAM_PASSWORD = "correct horse battery staple"


class World:
    """A fresh database with one site, one terminal, two guards and a user token."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.cipher = ServerCipher(Fernet.generate_key())
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine, cipher=self.cipher)
        self.app.config["GUARDPOST_BOARD_CACHE_S"] = 0  # these tests look at the board right after each change
        self.client = self.app.test_client()
        self.seq = 0
        with self.sessions.begin() as s:
            registry.ensure_site(s, "hq", name="Headquarters")
            registry.ensure_site(s, "depot")
            _, self.secret = registry.add_device(s, "hq", "gate-1")
            registry.add_guard(s, "g1", "Alice", sites=["hq"], face_consent=True)
            registry.add_guard(s, "g2", "Bob", sites=["depot"], face_consent=True)
            _, self.token = users.add_user(s, "sam", "supervisor", site_ids=["hq", "depot"], password=SAM_PASSWORD)

    def event(
        self, type_: str, guard_id: str | None, ago: timedelta, *, site: str = "hq", device: str = "gate-1"
    ) -> str:
        self.seq += 1
        event_id = str(uuid.uuid4())
        with self.sessions.begin() as s:
            s.add(
                Event(
                    event_id=event_id,
                    device_id=device,
                    site_id=site,
                    seq=self.seq,
                    type=type_,
                    method="face",
                    guard_id=guard_id,
                    captured_at=utcnow() - ago,
                    clock_synced=True,
                    distance=0.31,
                    margin=0.12,
                    liveness="pass",
                    payload={"evidence_sha256": "ab" * 32},
                )
            )
        return event_id

    def get(self, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.client.get(path, headers=headers, **kwargs)

    def gallery(self, *, secret: str | None = None, timestamp: int | None = None, device: str = "gate-1", **headers):
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = request_signature(secret or self.secret, "GET", GALLERY_PATH, ts)
        headers |= {DEVICE_HEADER: device, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}
        return self.client.get(GALLERY_PATH, headers=headers)


@pytest.fixture
def world(db_url: str):
    w = World(db_url)
    yield w
    w.engine.dispose()


def on_duty(world: World, site_id: str = "hq") -> list[dict]:
    response = world.get("/api/v1/live")
    assert response.status_code == 200
    return next(s for s in response.get_json()["sites"] if s["site_id"] == site_id)["on_duty"]


def test_health(world: World) -> None:
    response = world.client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_reports_a_broken_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/t.db")
    app = create_app(ServerSettings(db_url="sqlite://"), engine=engine, cipher=ServerCipher(Fernet.generate_key()))
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "degraded", "database": "OperationalError"}
    engine.dispose()


@pytest.mark.parametrize("path", ["/api/v1/live", "/api/v1/events", "/api/v1/rejects"])
def test_user_endpoints_need_a_valid_token(world: World, path: str) -> None:
    missing = world.client.get(path)
    assert missing.status_code == 401
    assert "guardpost users add" in missing.get_json()["error"]
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert world.get(path, token="not-a-token").status_code == 401
    assert world.client.get(path, headers={"Authorization": world.token}).status_code == 401


def test_api_errors_are_json(world: World) -> None:
    missing = world.get("/api/v1/nope")
    assert missing.status_code == 404 and missing.get_json() == {"error": "no such API endpoint"}
    wrong_method = world.client.post("/api/v1/health")
    assert wrong_method.status_code == 405 and "error" in wrong_method.get_json()
    assert "GET" in wrong_method.headers["Allow"]


def test_events_newest_first_with_fields(world: World) -> None:
    old = world.event("check_in", "g1", timedelta(hours=2))
    new = world.event("check_out", "g1", timedelta(hours=1))
    body = world.get("/api/v1/events").get_json()
    assert [e["event_id"] for e in body["events"]] == [new, old]
    assert body["next_cursor"] is None
    first = body["events"][0]
    assert first["captured_at"].endswith("+00:00")
    assert first["match"] == {"distance": 0.31, "margin": 0.12, "frames": None, "liveness": "pass"}
    assert first["evidence_sha256"] == "ab" * 32
    assert (first["guard_id"], first["guard_name"], first["site_id"], first["device_id"]) == (
        "g1",
        "Alice",
        "hq",
        "gate-1",
    )


def test_event_without_distance_keeps_its_match(world: World) -> None:
    world.event("denied", None, timedelta(minutes=1))
    with world.sessions.begin() as s:
        s.execute(update(Event).values(distance=None, margin=None))  # an empty gallery gives no distance
    (event,) = world.get("/api/v1/events").get_json()["events"]
    assert event["match"] == {"distance": None, "margin": None, "frames": None, "liveness": "pass"}
    assert event["guard_id"] is None and event["guard_name"] is None


def test_events_filters(world: World) -> None:
    a = world.event("check_in", "g1", timedelta(hours=5))
    b = world.event("patrol", "g1", timedelta(hours=3))
    c = world.event("check_in", "g2", timedelta(hours=1), site="depot", device="dock-1")
    d = world.event("denied", None, timedelta(minutes=30))

    def ids(query: str) -> list[str]:
        response = world.get(f"/api/v1/events?{query}")
        assert response.status_code == 200, response.get_json()
        return [e["event_id"] for e in response.get_json()["events"]]

    assert ids("site=depot") == [c]
    assert ids("device=gate-1") == [d, b, a]
    assert ids("guard=g1") == [b, a]
    assert ids("type=check_in") == [c, a]
    since = (datetime.now().astimezone() - timedelta(hours=4)).isoformat()
    until = (datetime.now().astimezone() - timedelta(hours=2)).isoformat()
    assert ids(f"since={since.replace('+', '%2B')}") == [d, c, b]
    assert ids(f"since={since.replace('+', '%2B')}&until={until.replace('+', '%2B')}") == [b]
    assert ids("until=2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "since=yesterday",
        "since=2024-05-01T08:00:00",
        "type=lunch",
        "cursor=%%%",
        "cursor=bm9wZQ",
    ],
)
def test_events_bad_parameters_are_400(world: World, query: str) -> None:
    response = world.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_events_cursor_pagination_returns_each_event_once(world: World) -> None:
    same_moment = timedelta(minutes=10)
    expected = [world.event("patrol", "g1", timedelta(minutes=i)) for i in range(5)]
    # Two events captured in the same instant must still each appear exactly once.
    expected += [world.event("patrol", "g1", same_moment), world.event("patrol", "g1", same_moment)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = world.get(f"/api/v1/events?{query}").get_json()
        seen += [e["event_id"] for e in body["events"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(expected) and len(seen) == 7


def test_limit_bounds_are_accepted(world: World) -> None:
    for _ in range(3):
        world.event("patrol", "g1", timedelta(minutes=1))
    assert len(world.get("/api/v1/events?limit=1").get_json()["events"]) == 1
    assert len(world.get("/api/v1/events?limit=1000").get_json()["events"]) == 3


def test_rejects_listing(world: World) -> None:
    with world.sessions.begin() as s:
        for device in ("gate-1", "gate-2"):
            s.add(
                Reject(
                    topic=f"guardpost/v1/hq/{device}/events",
                    device_id=device,
                    reason="bad_signature",
                    detail="signature does not match",
                    payload_excerpt="{...}",
                    payload_size=420,
                )
            )
    with world.sessions.begin() as s:
        _, admin = users.add_user(s, "root", "admin")
    body = world.get("/api/v1/rejects", token=admin).get_json()
    assert [r["device_id"] for r in body["rejects"]] == ["gate-2", "gate-1"]
    # gate-2 is no registered terminal of the supervisor's sites: only admins see its rejects.
    assert [r["device_id"] for r in world.get("/api/v1/rejects").get_json()["rejects"]] == ["gate-1"]
    only = world.get("/api/v1/rejects?device=gate-1&limit=5").get_json()["rejects"]
    assert len(only) == 1 and only[0]["reason"] == "bad_signature" and only[0]["payload_size"] == 420
    assert world.get("/api/v1/rejects?limit=0").status_code == 400


def test_live_shows_guard_on_duty_until_check_out(world: World) -> None:
    assert on_duty(world) == []
    world.event("check_in", "g1", timedelta(hours=3))
    world.event("patrol", "g1", timedelta(hours=1))
    duty = on_duty(world)
    assert [(g["guard_id"], g["name"], g["method"], g["device_id"]) for g in duty] == [
        ("g1", "Alice", "face", "gate-1")
    ]
    check_in = world.get("/api/v1/events?type=check_in").get_json()["events"][0]
    assert duty[0]["since"] == check_in["captured_at"]
    world.event("check_out", "g1", timedelta(minutes=5))
    assert on_duty(world) == []


def test_duty_starts_at_the_first_check_in_after_the_last_check_out(world: World) -> None:
    world.event("check_in", "g1", timedelta(hours=10))
    world.event("check_out", "g1", timedelta(hours=8))
    world.event("check_in", "g1", timedelta(hours=3))  # the duty now on starts here
    world.event("check_in", "g1", timedelta(hours=1))  # a repeated check-in does not restart it
    check_ins = world.get("/api/v1/events?type=check_in").get_json()["events"]
    (duty,) = on_duty(world)
    assert duty["since"] == check_ins[1]["captured_at"]


def test_live_lists_all_sites_and_terminals(world: World) -> None:
    with world.sessions.begin() as s:
        terminal = s.get(Terminal, "gate-1")
        terminal.online = True
        terminal.last_seen_at = utcnow()
        terminal.heartbeat = {"outbox_depth": 4, "clock_synced": False, "alarms": ["outbox: only 12 MB free"]}
    body = world.get("/api/v1/live").get_json()
    assert body["generated_at"].endswith("+00:00")
    sites = {s["site_id"]: s for s in body["sites"]}
    assert set(sites) == {"hq", "depot"} and sites["hq"]["name"] == "Headquarters"
    assert sites["depot"]["on_duty"] == [] and sites["depot"]["terminals"] == []
    (gate,) = sites["hq"]["terminals"]
    assert gate["online"] is True and gate["outbox_depth"] == 4 and gate["clock_synced"] is False
    assert gate["alarms"] == ["outbox: only 12 MB free"]


def test_denied_and_stale_events_never_put_anyone_on_duty(world: World) -> None:
    world.event("denied", "g1", timedelta(minutes=5))
    world.event("denied", None, timedelta(minutes=4))
    world.event("check_in", "g2", timedelta(hours=30), site="depot")
    assert on_duty(world) == [] and on_duty(world, "depot") == []
    # A denial after a check-out must not reopen the duty either.
    world.event("check_in", "g1", timedelta(hours=2))
    world.event("check_out", "g1", timedelta(hours=1))
    world.event("denied", "g1", timedelta(minutes=1))
    assert on_duty(world) == []


def enrol(world: World, guard_id: str = "g1") -> None:
    rng = np.random.default_rng(7)
    with world.sessions.begin() as s:
        for _ in range(2):
            registry.add_template(s, world.cipher, guard_id, rng.normal(size=128), "cd" * 32)


def test_gallery_serves_assigned_guards_templates(world: World) -> None:
    enrol(world, "g1")
    enrol(world, "g2")  # posted to another site: must not be served to gate-1
    response = world.gallery()
    assert response.status_code == 200, response.get_json()
    gallery = parse_gallery(response.get_json())
    assert gallery.site_id == "hq" and set(gallery.templates) == {"g1"}
    assert gallery.templates["g1"].shape == (2, 128) and gallery.names["g1"] == "Alice"
    assert response.headers["ETag"] == f'"{gallery.version}"'


def test_gallery_etag_answers_304_until_templates_change(world: World) -> None:
    enrol(world)
    etag = world.gallery().headers["ETag"]
    unchanged = world.gallery(**{"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    enrol(world)
    changed = world.gallery(**{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_withdrawn_consent_deletes_templates_and_empties_the_gallery(world: World) -> None:
    enrol(world, "g1")
    version = parse_gallery(world.gallery().get_json()).version
    with world.sessions.begin() as s:
        assert registry.set_face_consent(s, "g1", given=False) == 2
    gallery = parse_gallery(world.gallery().get_json())
    assert gallery.templates == {} and gallery.version != version
    with world.sessions.begin() as s, pytest.raises(registry.RegistryError, match="no recorded consent"):
        registry.add_template(s, world.cipher, "g1", np.zeros(128), "ab" * 32)


def test_gallery_rejects_bad_requests(world: World) -> None:
    assert world.client.get(GALLERY_PATH).status_code == 401
    assert world.gallery(secret="0" * 64).status_code == 401
    stale = world.gallery(timestamp=int(time.time()) - MAX_CLOCK_SKEW_S - 60)
    assert stale.status_code == 401 and "clock" in stale.get_json()["error"]
    assert world.gallery(device="gate-9").status_code == 401
    with world.sessions.begin() as s:
        s.get(Terminal, "gate-1").enabled = False
    assert world.gallery().status_code == 401


def test_gallery_without_key_is_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GUARDPOST_KEY", "GUARDPOST_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(ServerSettings(db_url="sqlite://"), engine=world.engine)
    ts = str(int(time.time()))
    headers = {
        DEVICE_HEADER: "gate-1",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: request_signature(world.secret, "GET", GALLERY_PATH, ts),
    }
    response = app.test_client().get(GALLERY_PATH, headers=headers)
    assert response.status_code == 503 and "key" in response.get_json()["error"]


@pytest.mark.parametrize("path", ["/", "/api/v1/health", "/api/v1/nope", "/static/dashboard.js"])
def test_security_headers(world: World, path: str) -> None:
    response = world.client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    response.close()


def test_dashboard_page_and_static_files(world: World) -> None:
    assert world.client.get("/board").status_code == 302  # to the login page
    login(world.client, "sam", SAM_PASSWORD)
    page = world.client.get("/board")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/static/dashboard.js" in html and "/static/dashboard.css" in html
    assert "<script>" not in html and "style=" not in html  # nothing inline, as the CSP demands
    for name, mimetype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        response = world.client.get(f"/static/{name}")
        assert response.status_code == 200 and response.mimetype == mimetype
        assert b"innerHTML" not in response.data
        response.close()
