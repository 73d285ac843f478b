"""Supervisor pages: alerts and review decisions, duty logs with corrections, guards, charts, each in its scope."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.duty.tables import DutyCorrection, DutyRecordRow
from server.lookup_digests import ServerCipher
from server.models import Event, Finding, ReviewDecision
from server.review import ReviewError
from server.web import create_app
from tests.support import pages_world as world
from tests.support.web import login, page_csrf

EN = {"Accept-Language": "en"}


class Pages:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.cipher = ServerCipher(Fernet.generate_key())
        with self.sessions.begin() as s:
            world.build(s, self.cipher)
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine, cipher=self.cipher)

    def client(self, name: str):
        client = self.app.test_client()
        assert login(client, name, world.PASSWORD).status_code == 302
        return client

    def borderline(self) -> Finding:
        with self.sessions() as s:
            return s.scalar(select(Finding).where(Finding.kind == "borderline_match"))

    def record(self, guard: str) -> DutyRecordRow:
        with self.sessions() as s:
            return s.scalar(select(DutyRecordRow).where(DutyRecordRow.guard_id == guard))

    def text(self, client, path: str) -> str:
        response = client.get(path, headers=EN)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


@pytest.fixture
def pages(db_url):
    built = Pages(db_url)
    yield built
    built.engine.dispose()


def decide(pages: Pages, client, decision: str, reason: str, finding_id: int | None = None):
    finding_id = finding_id or pages.borderline().id
    form = {"decision": decision, "reason": reason, "csrf_token": page_csrf(client, "/alerts")}
    return client.post(f"/alerts/{finding_id}/decision", data=form, headers=EN)


def test_navigation_lists_every_supervisor_page(pages):
    html = pages.text(pages.client("supervisor"), "/board")
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)
    labels = re.findall(r">([^<>]+)</a>", nav)
    assert labels == ["Live duty board", "Alerts", "Duty logs", "Guards", "Charts", "Exports", "Provincial reporting"]


def test_confirming_a_borderline_match_makes_it_the_guards_check_in(pages):
    assert pages.record("g-north").status == "absent"
    client = pages.client("supervisor")
    queue = pages.text(client, "/alerts?kind=borderline_match")
    assert "Confirm: it was g-north" in queue and "distance 0.57" in queue
    answer = decide(pages, client, "confirmed", "  CCTV shows Li Na at the gate at 08:02  ")
    assert answer.status_code == 303 and "decided=" in answer.location
    record = pages.record("g-north")
    # Checked in (08:02 local) but never out: the duty log now knows she came.
    assert record.status == "missing_check_out" and record.first_in == world.on_day(8, 2)
    assert record.check_in_method == "face" and record.check_in_distance == pytest.approx(0.57)
    with pages.sessions() as s:
        decision = s.scalar(select(ReviewDecision))
        assert (decision.decision, decision.guard_id, decision.decided_by) == ("confirmed", "g-north", "supervisor")
        assert decision.reason == "CCTV shows Li Na at the gate at 08:02"
        finding = s.get(Finding, decision.finding_id)
        assert finding.resolved_by == "supervisor" and finding.resolved_at == decision.decided_at
        event = s.scalar(select(Event).where(Event.event_id == decision.event_id))
        assert event.type == "denied" and event.guard_id is None  # the signed record is never rewritten
        # The absence it had raised is resolved by the recompute.
        absent = s.scalar(select(Finding).where(Finding.kind == "absent", Finding.guard_id == "g-north"))
        assert absent.resolved_at is not None
    shown = pages.text(client, answer.location)
    assert "Recorded: g-north confirmed by supervisor." in shown
    duty = pages.text(client, f"/duty?date={world.DAY}&site=north")
    assert "missing check-out" in duty and f"{world.DAY} 08:02" in duty
    guard = pages.text(client, "/guards/g-north")
    assert "borderline match, confirmed by supervisor" in guard


def test_rejecting_keeps_the_event_denied_and_records_why(pages):
    client = pages.client("manager")
    assert decide(pages, client, "rejected", "not her: she was on leave").status_code == 303
    assert pages.record("g-north").status == "absent"
    with pages.sessions() as s:
        decision = s.scalar(select(ReviewDecision))
        assert (decision.decision, decision.decided_by, decision.reason) == (
            "rejected",
            "manager",
            "not her: she was on leave",
        )
        assert s.get(Finding, decision.finding_id).resolved_at is not None
    resolved = pages.text(client, "/alerts?state=resolved&kind=borderline_match")
    assert "not her: she was on leave" in resolved and "Confirm:" not in resolved


def test_a_decision_needs_a_reason_and_is_taken_once(pages):
    client = pages.client("supervisor")
    refused = decide(pages, client, "confirmed", "   ")
    assert refused.status_code == 422 and "needs a reason" in refused.get_data(as_text=True)
    assert decide(pages, client, "maybe", "x").status_code == 400
    with pages.sessions() as s:
        assert s.scalar(select(ReviewDecision)) is None
    assert decide(pages, client, "rejected", "stranger").status_code == 303
    again = decide(pages, client, "confirmed", "changed my mind")
    assert again.status_code == 422 and "already resolved" in again.get_data(as_text=True)
    with pages.sessions() as s:
        assert [d.decision for d in s.scalars(select(ReviewDecision))] == ["rejected"]
    other = pages.text(client, "/alerts?kind=absent")
    finding_id = int(re.search(r'id="finding-(\d+)"', other).group(1))
    wrong = decide(pages, client, "confirmed", "x", finding_id)
    assert wrong.status_code == 422 and "only borderline matches" in wrong.get_data(as_text=True)


def test_decisions_are_permanent_records(pages):
    decide(pages, pages.client("supervisor"), "rejected", "stranger")
    with pages.sessions() as s:
        decision = s.scalar(select(ReviewDecision))
        decision.reason = "rewritten"
        with pytest.raises(ReviewError, match="permanent record"):
            s.flush()
        s.rollback()
        s.delete(s.scalar(select(ReviewDecision)))
        with pytest.raises(ReviewError, match="permanent record"):
            s.flush()


def test_alert_filters_narrow_the_list(pages):
    client = pages.client("admin")
    everything = pages.text(client, "/alerts")
    assert {"borderline_match", "absent", "late", "certificate_missing"} <= set(
        re.findall(r'data-kind="(\w+)"', everything)
    )
    late = pages.text(client, "/alerts?kind=late")
    assert set(re.findall(r'data-kind="(\w+)"', late)) == {"late"}
    bj = pages.text(client, "/alerts?site=bj")
    assert "g-bj" in bj and "g-south" not in bj and "g-north" not in bj
    violations = pages.text(client, "/alerts?severity=violation")
    kinds = set(re.findall(r'data-kind="(\w+)"', violations))
    assert "certificate_missing" in kinds and "borderline_match" not in kinds and "late" not in kinds


def test_duty_log_correction_with_reason_and_history(pages):
    client = pages.client("supervisor")
    page = pages.text(client, f"/duty?date={world.DAY}")
    assert "g-north" in page and "g-south" not in page  # only the supervisor's site
    form = {
        "guard_id": "g-north",
        "shift_id": "north-day",
        "date": str(world.DAY),
        "field": "status",
        "value": "present",
        "reason": "paper sign-in sheet, gate camera down",
        "next": f"/duty?date={world.DAY}",
        "csrf_token": page_csrf(client, "/duty"),
    }
    missing_reason = client.post("/duty/corrections", data=form | {"reason": " "}, headers=EN)
    assert missing_reason.status_code == 422 and "needs a reason" in missing_reason.get_data(as_text=True)
    saved = client.post("/duty/corrections", data=form, headers=EN)
    assert saved.status_code == 303 and saved.location.startswith(f"/duty?date={world.DAY}&corrected_id=")
    record = pages.record("g-north")
    assert record.status == "present" and record.corrected
    with pages.sessions() as s:
        correction = s.scalar(select(DutyCorrection))
        assert (correction.old_value, correction.corrected_by) == ("absent", "supervisor")
    html = pages.text(client, saved.location)
    assert "Saved: status of g-north on 2026-03-02 is now present." in html
    assert "Correction history (1)" in html and "paper sign-in sheet, gate camera down" in html
    history = re.search(r'<table class="history">.*?</table>', html, re.S).group(0)
    assert "absent" in history and "present" in history and "supervisor" in history
    corrected_only = pages.text(client, f"/duty?date={world.DAY}&corrected=1")
    assert corrected_only.count('class="corrected"') == 1


def test_duty_log_filters(pages):
    client = pages.client("admin")
    late = pages.text(client, f"/duty?date={world.DAY}&status=late")
    assert re.findall(r'data-guard="([\w-]+)"', late) == ["g-south"]
    by_guard = pages.text(client, "/duty?from=2026-03-01&to=2026-03-03&guard=g-bj")
    assert re.findall(r'data-guard="([\w-]+)"', by_guard) == ["g-bj"]
    too_long = client.get("/duty?from=2026-01-01&to=2026-03-31", headers=EN)
    assert too_long.status_code == 400 and "at most 31 days" in too_long.get_data(as_text=True)


def test_guard_list_search_and_guard_page(pages):
    client = pages.client("manager")
    listed = pages.text(client, "/guards")
    assert "g-north" in listed and "g-south" in listed and "g-bj" not in listed
    found = pages.text(client, "/guards?q=wang")
    assert "g-south" in found and "g-north" not in found
    assert "No guards found" in pages.text(client, "/guards?q=%25")  # typed % matches only itself
    page = pages.text(client, "/guards/g-north")
    assert "GD******0123" in page and "GD2024000123" not in page  # numbers only masked
    assert "110105********002X" in page and "11010519491231002X" not in page
    assert re.search(r'id="certificate-status"[^>]*>valid<', page)
    assert re.search(r'id="templates">0<', page) and "given on" in page
    assert "North Mall" in page and "Acme Security" in page  # the trajectory


def test_charts_are_svg_with_titles_and_numbers(pages):
    client = pages.client("admin")
    html = pages.text(client, f"/charts?from={world.DAY}&to={world.DAY}")
    assert html.count('role="img"') == 3
    for title in ("Attendance rate per day", "Lateness by site", "Check-ins per hour"):
        assert re.search(rf'<title id="\w+-title">{title}</title>', html)
    # Three rostered duties, two attended; one of two attended late (south), at 08:20 and 07:58 local.
    assert "2026-03-02: 67 % (2 of 3 duties)" in html
    assert "south: 100 % late (1 of 1), 20 min late on average" in html
    assert "08:00–08:59: 1 check-ins" in html and "07:00–07:59: 1 check-ins" in html
    assert "style=" not in html  # the CSP allows no inline style
    supervisor = pages.text(pages.client("supervisor"), f"/charts?from={world.DAY}&to={world.DAY}")
    assert "2026-03-02: 0 % (0 of 1 duties)" in supervisor and "south:" not in supervisor


def test_the_board_groups_by_post_and_shows_how_each_guard_was_verified(pages):
    from datetime import timedelta

    from server.models import utcnow

    with pages.sessions.begin() as s:
        s.add(world.stored_event("gate-n", "north", 7, "check_in", "g-north", utcnow() - timedelta(minutes=5)))
    live = pages.client("supervisor").get("/api/v1/live").get_json()
    (north,) = live["sites"]
    (post,) = north["posts"]
    assert post["post_id"] == "north-gate" and post["name"] == "North gate"
    (guard,) = post["on_duty"]
    assert (guard["guard_id"], guard["method"], guard["distance"], guard["liveness"]) == (
        "g-north",
        "face",
        0.31,
        "pass",
    )
    assert [t["device_id"] for t in post["terminals"]] == ["gate-n"]
    page = pages.text(pages.client("supervisor"), "/board")
    assert '<script type="application/json" id="board-text">' in page and "How verified" in page
