"""The /reports page and its API: who sees which batches, and who may re-send a refused one."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from server import users
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.models import SecurityEvent
from server.reporting.config import load_config, load_secret
from server.reporting.runner import Reporter
from server.reporting.tables import ReportBatch
from server.web import create_app
from tests.support.reporting import Registry, receiver, write_config
from tests.support.web import login, page_csrf

PASSWORD = "blue harbour 7 lanterns"
ROW = re.compile(r'<tr id="batch-(\d+)" data-status="(\w+)">')


class World:
    """The reporting registry after one round in which the guards' batches were refused (a mapping slip)."""

    def __init__(self, url: str, tmp_path):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.registry = Registry(self.sessions)
        with receiver() as (endpoint, _store):
            path = write_config(tmp_path, endpoint)
            path.write_text(path.read_text("utf-8").replace('XM = "name"', 'XINGMING = "name"'), "utf-8")
            config = load_config(path)
            Reporter(self.sessions, config, load_secret(config), self.registry.cipher).run_once()
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine)
        self.tokens: dict[str, str] = {}
        scopes = {
            "admin": ("admin", {}),
            "police-gd": ("police", {"jurisdiction": "广东"}),
            "police-bj": ("police", {"jurisdiction": "11"}),
            "manager-1": ("manager", {"company_id": "C-01"}),
            "manager-2": ("manager", {"company_id": "C-02"}),
            "supervisor": ("supervisor", {"site_ids": ["site-a"]}),
        }
        with self.sessions.begin() as s:
            for name, (role, scope) in scopes.items():
                _, self.tokens[name] = users.add_user(s, name, role, password=PASSWORD, **scope)
            self.batches = {b.id: b for b in s.scalars(select(ReportBatch))}

    def ids(self, company_id: str | None = None, status: str | None = None) -> set[int]:
        return {
            b.id
            for b in self.batches.values()
            if (company_id is None or b.company_id == company_id) and (status is None or b.status == status)
        }

    def client(self, name: str):
        client = self.app.test_client()
        assert login(client, name, PASSWORD).status_code == 302
        return client

    def api(self, name: str, method: str, path: str):
        client = self.app.test_client()
        return client.open(path, method=method, headers={"Authorization": f"Bearer {self.tokens[name]}"})

    def status(self, batch_id: int) -> ReportBatch:
        with self.sessions() as s:
            return s.get(ReportBatch, batch_id)


@pytest.fixture
def world(db_url, tmp_path):
    built = World(db_url, tmp_path)
    yield built
    built.engine.dispose()


def rows(html: str) -> dict[int, str]:
    return {int(n): status for n, status in ROW.findall(html)}


def resend_buttons(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'action="/reports/(\d+)/resend"', html)}


def test_each_role_sees_its_batches_and_only_admin_and_managers_may_resend(world):
    refused = world.ids(status="refused")
    assert len(refused) == 2 and len(world.batches) == 8
    html = world.client("manager-1").get("/reports?lang=en").get_data(as_text=True)
    assert '<a href="/reports" aria-current="page">Provincial reporting</a>' in html
    assert set(rows(html)) == world.ids("C-01")
    assert resend_buttons(html) == world.ids("C-01", "refused")
    assert "G-1.XM: required item missing or empty" in html

    admin = world.client("admin").get("/reports?lang=en").get_data(as_text=True)
    assert set(rows(admin)) == set(world.batches) and resend_buttons(admin) == refused
    police = world.client("police-gd").get("/reports").get_data(as_text=True)
    assert set(rows(police)) == set(world.batches) and resend_buttons(police) == set()
    assert rows(world.client("police-bj").get("/reports").get_data(as_text=True)) == {}
    supervisor = world.client("supervisor").get("/reports?lang=en").get_data(as_text=True)
    assert rows(supervisor) == {} and "a manager or an administrator sees them" in supervisor

    only_refused = world.client("admin").get("/reports?status=refused").get_data(as_text=True)
    assert set(rows(only_refused)) == refused
    assert world.app.test_client().get("/reports").status_code == 302  # to the login page


def test_a_manager_resends_their_refused_batch_from_the_page_with_the_csrf_token(world):
    mine = min(world.ids("C-01", "refused"))
    client = world.client("manager-1")
    assert client.post(f"/reports/{mine}/resend").status_code == 403  # no CSRF token
    assert world.status(mine).status == "refused"
    token = page_csrf(client, "/reports")
    answer = client.post(f"/reports/{mine}/resend", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.location == f"/reports?resent={mine}"
    batch = world.status(mine)
    assert (batch.status, batch.attempts, batch.resent_by) == ("pending", 0, "manager-1")
    assert f"Batch {mine} is queued again" in client.get(f"/reports?resent={mine}&lang=en").get_data(as_text=True)
    again = client.post(f"/reports/{mine}/resend", data={"csrf_token": token})
    assert again.location == f"/reports?not_resent={mine}"  # already pending: nothing changes


def test_resending_another_companys_batch_or_as_police_is_refused_and_recorded(world):
    theirs = min(world.ids("C-02", "refused"))
    client = world.client("manager-1")
    token = page_csrf(client, "/reports")
    assert client.post(f"/reports/{theirs}/resend", data={"csrf_token": token}).status_code == 403
    assert world.api("police-gd", "POST", f"/api/v1/reports/batches/{theirs}/resend").status_code == 403
    supervisor = world.api("supervisor", "POST", f"/api/v1/reports/batches/{theirs}/resend")
    assert supervisor.status_code == 403
    assert world.status(theirs).status == "refused"
    with world.sessions() as s:
        denied = list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "denied")))
    assert {e.user_name for e in denied} == {"manager-1", "police-gd", "supervisor"}
    assert any(f"batch {theirs} is outside" in e.detail for e in denied)


def test_the_api_lists_batches_in_scope_and_resends_with_a_token(world):
    answer = world.api("manager-2", "GET", "/api/v1/reports/batches")
    assert answer.status_code == 200
    listed = answer.get_json()["batches"]
    assert {b["id"] for b in listed} == world.ids("C-02")
    refused = next(b for b in listed if b["status"] == "refused")
    assert refused["last_error"] == "HTTP 422: G-2.XM: required item missing or empty"
    assert refused["rejected"] == [{"item": "G-2.XM", "reason": "required item missing or empty"}]
    accepted = next(b for b in listed if b["status"] == "accepted")
    assert accepted["receipt_id"] and accepted["accepted"] == accepted["records"]

    page = world.api("admin", "GET", "/api/v1/reports/batches?limit=3").get_json()
    assert len(page["batches"]) == 3 and page["next_before"] == page["batches"][-1]["id"]
    rest = world.api("admin", "GET", f"/api/v1/reports/batches?limit=100&before={page['next_before']}").get_json()
    assert {b["id"] for b in page["batches"] + rest["batches"]} == set(world.batches)
    assert world.api("admin", "GET", "/api/v1/reports/batches?status=lost").status_code == 400
    assert world.api("admin", "GET", "/api/v1/reports/batches?limit=0").status_code == 400
    assert world.app.test_client().get("/api/v1/reports/batches").status_code == 401

    resent = world.api("manager-2", "POST", f"/api/v1/reports/batches/{refused['id']}/resend")
    assert resent.status_code == 200 and resent.get_json()["batch"]["status"] == "pending"
    conflict = world.api("admin", "POST", f"/api/v1/reports/batches/{accepted['id']}/resend")
    assert conflict.status_code == 409 and "only refused or failed" in conflict.get_json()["error"]
    assert world.api("admin", "POST", "/api/v1/reports/batches/99999/resend").status_code == 404
