"""The Exports page: a form within the user's scope, their jobs with progress, CSRF, zh/en text."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.test_exports_api import World
from tests.support.exports import MONTH
from tests.support.web import csrf_from


@pytest.fixture
def world(db_url, tmp_path):
    built = World(db_url, tmp_path / "data")
    yield built
    built.close()


def test_the_page_needs_a_login(world):
    assert world.app.test_client().get("/exports").location.startswith("/login?next=/exports")


def test_the_form_offers_only_what_is_in_scope_and_loads_no_inline_script(world):
    client = world.client("supervisor")
    html = client.get("/exports", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<a href="/exports" aria-current="page">Exports</a>' in html
    assert 'value="north"' in html and 'value="south"' not in html and 'value="bj"' not in html
    assert 'name="company"' not in html  # a supervisor's scope is sites, not companies
    assert 'value="g-north"' in html and 'value="g-bj"' not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/exports.js" defer>']
    assert " style=" not in html
    script = client.get("/static/exports.js")
    script.close()
    assert script.status_code == 200
    manager = world.client("manager").get("/exports", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'value="acme"' in manager and 'value="zenith"' not in manager


def test_a_form_post_queues_a_job_that_shows_its_progress_and_then_a_download_link(world):
    client = world.client("supervisor")
    page = client.get("/exports", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "月度考勤导出" in page and "暂无导出" in page
    form = {"month": MONTH, "format": "csv", "locale": "en", "site": "north", "company": "", "guard": ""}
    assert client.post("/exports", data=form).status_code == 403  # no CSRF token
    created = client.post("/exports", data=form | {"csrf_token": csrf_from(page)})
    assert created.status_code == 302 and created.location.startswith("/exports?created=")
    job_id = int(created.location.rsplit("=", 1)[1])
    listed = client.get(created.location, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f"Export {job_id} is queued" in listed
    row = re.search(rf'<tr data-job-id="{job_id}" data-status="(\w+)">(.*?)</tr>', listed, re.S)
    assert row and row.group(1) in ("queued", "running", "done") and '<progress max="100"' in row.group(2)
    deadline = time.monotonic() + 30
    while world.job(job_id).status != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    done = client.get("/exports", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f'href="/api/v1/exports/{job_id}/download"' in done
    assert f'href="/api/v1/exports/{job_id}/download?part=totals"' in done
    assert 'value="100"' in done


def test_a_form_for_another_site_is_refused_and_a_bad_month_explained(world):
    client = world.client("supervisor")
    token = csrf_from(client.get("/exports").get_data(as_text=True))
    other = client.post("/exports", data={"month": MONTH, "format": "xlsx", "site": "south", "csrf_token": token})
    assert other.status_code == 403
    bad = client.post(
        "/exports",
        data={"month": "2026-13", "format": "xlsx", "csrf_token": token},
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 400 and "The export was not queued: month must look like 2026-11" in bad.get_data(
        as_text=True
    )
    assert world.app.test_client().get("/api/v1/exports").status_code == 401
