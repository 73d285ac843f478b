"""Logins, sessions, CSRF, throttling and scope: what a browser or script outside its rights gets."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from server import companies, users
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.duty.tables import DutyRecordRow
from server.models import SecurityEvent, WebSession
from server.web import create_app
from tests.support.web import csrf_from, login, page_csrf

PASSWORD = "blue harbour 7 lanterns"
DAY = date(2026, 11, 2)
RECORD = {"date": DAY, "status": "present", "minutes_worked": 480, "overtime_minutes": 0, "late_minutes": 0}
RECORD |= {"early_leave_minutes": 0, "punch_ids": []}


class Site:
    """Two companies in two provinces, one site each, a duty record at each, and a user of every role."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine)
        self.tokens: dict[str, str] = {}
        with self.sessions.begin() as s:
            companies.add_company(s, "acme", "Acme", home_province="44", filing_status="filed")
            companies.add_company(s, "zenith", "Zenith", home_province="11", filing_status="filed")
            companies.add_site(s, "north", "North gate", tz="Asia/Shanghai", company_id="acme", province="44")
            companies.add_site(s, "south", "South gate", tz="Asia/Shanghai", company_id="acme", province="44")
            companies.add_site(s, "bj", "Beijing office", tz="Asia/Shanghai", company_id="zenith", province="11")
            for site in ("north", "south", "bj"):
                s.add(DutyRecordRow(**RECORD, guard_id=f"g-{site}", site_id=site, shift_id=f"{site}-day"))
            scopes = {
                "admin": {},
                "police": {"jurisdiction": "广东"},
                "manager": {"company_id": "acme"},
                "supervisor": {"site_ids": ["north"]},
            }
            for role, scope in scopes.items():
                _, self.tokens[role] = users.add_user(s, role, role, password=PASSWORD, **scope)

    def client(self, role: str | None = None):
        client = self.app.test_client()
        if role is not None:
            assert login(client, role, PASSWORD).status_code == 302
        return client

    def security_events(self, kind: str) -> list[SecurityEvent]:
        with self.sessions() as s:
            return list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == kind).order_by(SecurityEvent.id)))


@pytest.fixture
def site(db_url):
    built = Site(db_url)
    yield built
    built.engine.dispose()


def session_cookie(client) -> str:
    cookie = client.get_cookie("__Host-guardpost-session")
    assert cookie is not None
    return cookie.value


def test_login_sets_a_hardened_cookie_and_rotates_the_session(site):
    client = site.app.test_client()
    response = login(client, "supervisor", PASSWORD, next_url="/board")
    assert response.status_code == 302 and response.location == "/board"
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-guardpost-session="))
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    first = session_cookie(client)
    assert login(client, "supervisor", PASSWORD).status_code == 302
    assert session_cookie(client) != first  # a new id at every login...
    with site.sessions() as s:
        assert s.scalar(select(WebSession).where(WebSession.user_id.is_not(None))) is not None
        assert len(s.scalars(select(WebSession)).all()) == 1  # ...and the old one is gone
    assert client.get("/board").status_code == 200


def test_an_old_session_cookie_is_useless_after_logout(site):
    client = site.client("manager")
    stolen = session_cookie(client)
    token = page_csrf(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    replay = site.app.test_client()
    replay.set_cookie("__Host-guardpost-session", stolen)
    assert replay.get("/board").status_code == 302  # back to the login page
    assert replay.get("/api/v1/live").status_code == 401


def test_posts_without_the_csrf_token_are_refused(site):
    client = site.client("supervisor")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    body = {"guard_id": "g-north", "shift_id": "north-day", "date": DAY.isoformat(), "field": "status"}
    body |= {"value": "absent", "reason": "left early, seen on camera"}
    refused = client.post("/api/v1/duty/corrections", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["error"]
    accepted = client.post("/api/v1/duty/corrections", json=body, headers={"X-CSRF-Token": page_csrf(client)})
    assert accepted.status_code == 201
    # The login form itself carries a token too (login CSRF).
    fresh = site.app.test_client()
    assert fresh.post("/login", data={"name": "admin", "password": PASSWORD}).status_code == 403


def test_wrong_passwords_are_throttled_and_recorded(site):
    client = site.app.test_client()
    for _ in range(5):
        assert login(client, "police", "not the password at all").status_code == 401
    throttled = login(client, "police", PASSWORD)
    assert throttled.status_code == 429 and client.get_cookie("__Host-guardpost-session") is None
    assert len(site.security_events("login_failed")) == 5 and site.security_events("throttled")
    assert login(client, "nobody", PASSWORD).status_code == 401  # unknown names fail the same way


def test_open_redirects_are_refused(site):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = login(site.app.test_client(), "admin", PASSWORD, next_url=target)
        assert response.status_code == 302 and response.location == "/"


def test_a_site_supervisor_gets_403_on_another_sites_duty_log_and_it_is_logged(site):
    client = site.client("supervisor")
    own = client.get(f"/api/v1/duty?date={DAY}&site=north")
    assert own.status_code == 200 and [r["site_id"] for r in own.get_json()["records"]] == ["north"]
    other = client.get(f"/api/v1/duty?date={DAY}&site=south")
    assert other.status_code == 403 and "outside this user's scope" in other.get_json()["error"]
    everything = client.get(f"/api/v1/duty?date={DAY}").get_json()["records"]
    assert {r["site_id"] for r in everything} == {"north"}
    denied = site.security_events("denied")
    assert denied[-1].user_name == "supervisor" and denied[-1].path == "/api/v1/duty"


@pytest.mark.parametrize(
    ("role", "sites"),
    [("admin", {"north", "south", "bj"}), ("police", {"north", "south"}), ("manager", {"north", "south"})],
)
def test_each_role_sees_its_scope_with_a_token_too(site, role, sites):
    headers = {"Authorization": f"Bearer {site.tokens[role]}"}
    client = site.app.test_client()
    assert {s["site_id"] for s in client.get("/api/v1/sites", headers=headers).get_json()["sites"]} == sites
    live = client.get("/api/v1/live", headers=headers).get_json()
    assert {s["site_id"] for s in live["sites"]} == sites
    duty = client.get(f"/api/v1/duty?date={DAY}", headers=headers).get_json()["records"]
    assert {r["site_id"] for r in duty} == sites


def test_police_are_read_only(site):
    client = site.client("police")
    body = {"guard_id": "g-north", "shift_id": "north-day", "date": DAY.isoformat(), "field": "status"}
    body |= {"value": "absent", "reason": "test"}
    refused = client.post("/api/v1/duty/corrections", json=body, headers={"X-CSRF-Token": page_csrf(client)})
    assert refused.status_code == 403 and "read-only" in refused.get_json()["error"]


def test_a_disabled_user_loses_token_and_login(site):
    with site.sessions.begin() as s:
        users.get_user(s, "manager").disabled = True
    headers = {"Authorization": f"Bearer {site.tokens['manager']}"}
    assert site.app.test_client().get("/api/v1/sites", headers=headers).status_code == 401
    assert login(site.app.test_client(), "manager", PASSWORD).status_code == 401


def test_a_bad_token_never_falls_back_to_the_cookie(site):
    client = site.client("admin")
    assert client.get("/api/v1/sites", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_pages_need_a_login_and_speak_the_users_language(site):
    anonymous = site.app.test_client()
    assert anonymous.get("/board").location.startswith("/login?next=/board")
    client = site.client("manager")
    chinese = client.get("/board", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert "实时值班看板" in chinese
    token = csrf_from(chinese)
    assert client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/board"}).status_code == 302
    english = client.get("/board", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "Live duty board" in english  # the saved choice beats the browser's
