"""The supervisor pages refuse what is outside a user's scope or rights, and every refusal is on record."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from server import registry
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.duty.tables import DutyCorrection, DutyRecordRow
from server.lookup_digests import ServerCipher
from server.models import Finding, ReviewDecision, SecurityEvent
from server.web import create_app
from tests.support import pages_world as world
from tests.support.web import login, page_csrf


class Site:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        with self.sessions.begin() as s:
            world.build(s, ServerCipher(Fernet.generate_key()))
            registry.add_guard(s, "g-x", '<img src=x onerror="alert(1)">', sites=["north"])
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine)

    def client(self, name: str):
        client = self.app.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        assert login(client, name, world.PASSWORD).status_code == 302
        return client

    def borderline_id(self) -> int:
        with self.sessions() as s:
            return s.scalar(select(Finding.id).where(Finding.kind == "borderline_match"))

    def denials(self) -> list[SecurityEvent]:
        with self.sessions() as s:
            return list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "denied")))

    def unchanged(self) -> bool:
        with self.sessions() as s:
            return s.scalar(select(ReviewDecision)) is None and s.scalar(select(DutyCorrection)) is None


@pytest.fixture
def site(db_url):
    built = Site(db_url)
    yield built
    built.engine.dispose()


CORRECTION = {"guard_id": "g-north", "shift_id": "north-day", "date": str(world.DAY), "field": "status"}
CORRECTION |= {"value": "present", "reason": "seen on camera"}


@pytest.mark.parametrize(
    "path",
    [
        f"/duty?date={world.DAY}&site=south",
        "/guards/g-south",
        "/guards/g-bj",
        "/guards/no-such-guard",
        "/alerts?site=south",
        "/charts?site=south",
    ],
)
def test_a_site_supervisor_gets_403_outside_their_sites_and_it_is_logged(site, path):
    client = site.client("supervisor")
    response = client.get(path)
    assert response.status_code == 403
    assert site.denials()[-1].user_name == "supervisor" and site.denials()[-1].path == path.split("?")[0]


def test_lists_show_only_what_is_in_scope(site):
    client = site.client("supervisor")
    guards = client.get("/guards").get_data(as_text=True)
    assert "g-north" in guards and "g-south" not in guards and "g-bj" not in guards
    duty = client.get(f"/duty?from={world.DAY}&to={world.DAY}").get_data(as_text=True)
    assert "g-north" in duty and "g-south" not in duty
    alerts = client.get("/alerts?state=all").get_data(as_text=True)
    assert "g-north" in alerts and "g-south" not in alerts and "g-bj" not in alerts
    police = site.client("police").get(f"/duty?date={world.DAY}").get_data(as_text=True)
    assert "g-south" in police and "g-bj" not in police  # province 44 only


def test_posts_without_the_csrf_token_are_refused(site):
    client = site.client("supervisor")
    finding = site.borderline_id()
    decision = {"decision": "confirmed", "reason": "seen on camera"}
    assert client.post(f"/alerts/{finding}/decision", data=decision).status_code == 403
    assert client.post(f"/alerts/{finding}/decision", data=decision | {"csrf_token": "forged"}).status_code == 403
    assert client.post("/duty/corrections", data=CORRECTION).status_code == 403
    assert site.unchanged()


def test_police_may_look_but_not_decide_or_correct(site):
    client = site.client("police")
    alerts = client.get("/alerts?kind=borderline_match").get_data(as_text=True)
    assert "g-north" in alerts and "may view but not decide" in alerts and 'name="decision"' not in alerts
    assert "Correct this record" not in client.get(f"/duty?date={world.DAY}").get_data(as_text=True)
    csrf = page_csrf(client, "/alerts")
    decision = {"decision": "confirmed", "reason": "x", "csrf_token": csrf}
    refused = client.post(f"/alerts/{site.borderline_id()}/decision", data=decision)
    assert refused.status_code == 403 and b"read-only" in refused.data
    assert client.post("/duty/corrections", data=CORRECTION | {"csrf_token": csrf}).status_code == 403
    assert site.unchanged()
    assert [d.user_name for d in site.denials()] == ["police", "police"]


def test_a_supervisor_cannot_decide_or_correct_at_another_site(site):
    client = site.client("sup-south")
    csrf = page_csrf(client, "/alerts")
    decision = {"decision": "confirmed", "reason": "x", "csrf_token": csrf}
    assert client.post(f"/alerts/{site.borderline_id()}/decision", data=decision).status_code == 403
    assert client.post("/duty/corrections", data=CORRECTION | {"csrf_token": csrf}).status_code == 403
    assert site.unchanged()
    with site.sessions() as s:
        assert s.scalar(select(DutyRecordRow.status).where(DutyRecordRow.guard_id == "g-north")) == "absent"


def test_confirmations_of_other_sites_are_not_echoed(site):
    owner = site.client("supervisor")
    csrf = page_csrf(owner, "/alerts")
    finding = site.borderline_id()
    form = {"decision": "rejected", "reason": "a stranger in a similar jacket", "csrf_token": csrf}
    assert owner.post(f"/alerts/{finding}/decision", data=form).status_code == 303
    other = site.client("sup-south").get(f"/alerts?decided={finding}&state=all").get_data(as_text=True)
    assert "a stranger in a similar jacket" not in other and 'id="decision-done"' not in other


def test_names_are_shown_as_text_never_as_markup(site):
    html = site.client("supervisor").get("/guards?q=img").get_data(as_text=True)
    assert '<img src=x onerror="alert(1)">' not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
