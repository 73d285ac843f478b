"""The supervisor web app in headless Chromium against a real `guardpost server`: scope, live board, review."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from protocol.events import build_heartbeat, encode
from protocol.topics import events_topic, heartbeat_topic
from server.crypto import generate_key_file, load_cipher
from server.db import make_engine, make_sessionmaker
from server.models import Terminal
from tests.support import pages_world as world
from tests.support.browser import CHROMIUM, LAUNCH_ARGS, require_browser
from tests.support.events import signed_event
from tests.support.mqtt_client import TestClient
from tests.support.server_process import ServerProcess, guardpost_server
from tests.support.services import wait_for

pytestmark = pytest.mark.slow

# What each user may see: sites on the board, guards in the duty log of DAY.
SCOPES = {
    "admin": ({"north", "south", "bj"}, {"g-north", "g-south", "g-bj"}),
    "police": ({"north", "south"}, {"g-north", "g-south"}),
    "manager": ({"north", "south"}, {"g-north", "g-south"}),
    "supervisor": ({"north"}, {"g-north"}),
    "sup-south": ({"south"}, {"g-south"}),
}


@pytest.fixture(scope="module")
def chromium():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class App:
    def __init__(self, server: ServerProcess, sessions, secrets: dict[str, str], mqtt: TestClient):
        self.server, self.sessions, self.secrets, self.mqtt = server, sessions, secrets, mqtt
        self.seq = 100

    def publish(self, device: str, site: str, **fields) -> str:
        self.seq += 1
        event = signed_event(self.secrets[device], site, device, seq=self.seq, **fields)
        self.mqtt.publish(events_topic(site, device), encode(event))
        return event["event_id"]

    def wait_until_ingest_listens(self) -> None:
        """Heartbeats until one is stored: then the server's ingest is subscribed and later events arrive."""

        def seen() -> bool:
            heartbeat = build_heartbeat(outbox_depth=3, clock_synced=True, version="e2e")
            self.mqtt.publish(heartbeat_topic("north", "gate-n"), heartbeat)
            with self.sessions() as s:
                return s.get(Terminal, "gate-n").last_seen_at is not None

        wait_for(seen, 60, "the server's ingest to store a heartbeat")


@pytest.fixture
def app(tmp_path, db_url, mqtt_url, chromium) -> Iterator[App]:
    key_file = tmp_path / "server.key"
    generate_key_file(key_file)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        secrets = world.build(s, load_cipher(key_file), with_borderline=False)
    mqtt = TestClient(mqtt_url)
    try:
        with guardpost_server(tmp_path, db_url, mqtt_url, key_file) as server:
            running = App(server, sessions, secrets, mqtt)
            running.wait_until_ingest_listens()
            yield running
    finally:
        mqtt.close()
        engine.dispose()


def logged_in(chromium, app: App, name: str):
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    page.goto(app.server.url + "/board")
    assert "/login" in page.url  # pages need a login
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", world.PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/board$"))
    return context, page


def board_sites(page) -> set[str]:
    page.wait_for_selector("#board:not([hidden])")
    return set(page.eval_on_selector_all("#sites article.site", "cards => cards.map(c => c.dataset.site)"))


def test_each_role_sees_only_its_scope(chromium, app):
    for name, (sites, guards) in SCOPES.items():
        context, page = logged_in(chromium, app, name)
        try:
            assert board_sites(page) == sites, name
            page.goto(f"{app.server.url}/duty?date={world.DAY}")
            shown = set(page.eval_on_selector_all("#duty tr[data-guard]", "rows => rows.map(r => r.dataset.guard)"))
            assert shown == guards, name
            page.goto(app.server.url + "/guards")
            listed = page.inner_text("#guards")
            assert all(g in listed for g in guards) and not any(g in listed for g in SCOPES["admin"][1] - guards)
            if name != "admin":
                outside = sorted(SCOPES["admin"][1] - guards)[0]
                assert page.goto(f"{app.server.url}/guards/{outside}").status == 403, name
            alerts = page.goto(app.server.url + "/alerts")
            assert alerts.status == 200
            page.click("#logout")
            page.wait_for_url(re.compile(r".*/login$"))
        finally:
            context.close()


def test_a_check_in_appears_on_the_live_board_without_reloading(chromium, app):
    context, page = logged_in(chromium, app, "supervisor")
    try:
        page.wait_for_selector("body[data-live=live]")  # the event stream, not the polling fallback
        assert page.locator("[data-site=north] tr[data-guard=g-north]").count() == 0
        page.evaluate("window.stillTheSamePage = true")
        event_id = app.publish("gate-n", "north", guard_id="g-north", captured_at=datetime.now(UTC))
        app.publish("gate-s", "south", guard_id="g-south", captured_at=datetime.now(UTC))  # not the supervisor's
        page.wait_for_selector("[data-site=north] tr[data-guard=g-north]", timeout=20000)
        page.wait_for_selector(f"#events tr[data-event='{event_id}']", timeout=5000)
        assert page.evaluate("window.stillTheSamePage") is True
        row = page.inner_text("[data-site=north] tr[data-guard=g-north]")
        assert "Li Na" in row and "face" in row and "gate-n" in row
        assert "outbox 3" in page.inner_text("[data-site=north] tr[data-device=gate-n]")
        assert page.locator("tr[data-guard=g-south]").count() == 0
    finally:
        context.close()


def test_confirming_a_borderline_check_in_from_the_review_queue_updates_the_duty_log(chromium, app):
    event_id = app.publish(
        "gate-n",
        "north",
        type="denied",
        guard_id=None,
        candidate_guard_id="g-north",
        captured_at=world.on_day(8, 2).replace(tzinfo=UTC),
        match={"distance": 0.57, "margin": 0.02, "frames": 3, "liveness": "not_checked"},
    )
    police, police_page = logged_in(chromium, app, "police")
    context, page = logged_in(chromium, app, "supervisor")
    try:

        def queued(p) -> bool:
            p.goto(app.server.url + "/alerts?kind=borderline_match")
            return p.locator("tr.review").count() == 1

        wait_for(lambda: queued(page), 30, f"the borderline match {event_id} in the review queue")
        page.goto(f"{app.server.url}/duty?date={world.DAY}&site=north")
        assert page.inner_text("tr[data-guard=g-north] td.status").strip() == "absent"

        assert queued(police_page)  # police see it, read-only
        assert police_page.locator("form.decide").count() == 0
        assert "may view but not decide" in police_page.inner_text("tr.review")

        page.goto(app.server.url + "/alerts?kind=borderline_match")
        assert "distance 0.57" in page.inner_text("tr.review")
        page.fill("tr.review textarea[name=reason]", "CCTV at the north gate shows Li Na at 08:02")
        page.click("tr.review button[value=confirmed]")
        page.wait_for_selector("#decision-done")
        assert "g-north confirmed by supervisor" in page.inner_text("#decision-done")

        page.goto(f"{app.server.url}/duty?date={world.DAY}&site=north")
        record = page.locator("tr[data-guard=g-north]")
        assert record.get_attribute("data-status") == "missing_check_out"
        assert page.inner_text("tr[data-guard=g-north] td.first-in").strip() == f"{world.DAY} 08:02"
        page.goto(app.server.url + "/alerts?kind=borderline_match&state=resolved")
        assert "CCTV at the north gate shows Li Na at 08:02" in page.inner_text("#findings")
    finally:
        context.close()
        police.close()


def test_a_manager_downloads_a_monthly_export_that_opens_with_the_expected_rows(chromium, app, tmp_path):
    context, page = logged_in(chromium, app, "manager")
    try:
        page.goto(app.server.url + "/exports")
        page.fill("input[name=month]", f"{world.DAY:%Y-%m}")
        page.select_option("select[name=format]", "xlsx")
        page.select_option("select[name=locale]", "en")
        page.click("form.export-form button[type=submit]")
        page.wait_for_selector("#export-created")
        # The page follows the job without a reload until its download link appears.
        page.wait_for_selector("tr[data-job-id][data-status=done] a[href$=download]", timeout=60000)
        with page.expect_download() as download:
            page.click("tr[data-job-id][data-status=done] a[href$=download]")
        saved = tmp_path / "attendance.xlsx"
        download.value.save_as(saved)
    finally:
        context.close()
    book = load_workbook(saved, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    guard = header.index(next(h for h in header if str(h).lower().startswith("guard id")))
    status = header.index(next(h for h in header if str(h).lower() == "status"))
    day = header.index(next(h for h in header if str(h).lower() == "date"))
    on_day = {r[guard]: r[status] for r in body if str(r[day])[:10] == str(world.DAY)}
    assert set(on_day) == {"g-north", "g-south"}  # the manager's company; g-bj is another company's
    assert len(body) == 2 * 31  # one row per guard per day of the month
    assert on_day["g-south"] == "Late" and on_day["g-north"] != "Late"
