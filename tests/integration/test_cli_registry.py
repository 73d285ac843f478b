"""The registry and import commands as an operator runs them: companies, sites, posts, guards, imports, enrolment."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from biometrics.images import load_image_rgb
from guardpost.samples import grace_hopper_path
from tests.integration.test_cli import run
from tests.support.ids import resident_id as support_resident_id

pytestmark = pytest.mark.slow


def resident_id(sequence: int) -> str:
    return support_resident_id(sequence, prefix="32010219880808")


@pytest.fixture
def env(db_url, tmp_path):
    key = tmp_path / "server.key"
    assert run("keygen", str(key)).returncode == 0
    env = {"GUARDPOST_DB": db_url, "GUARDPOST_KEY_FILE": str(key)}
    for args in (
        ("companies", "add", "acme", "--name", "苏州保安", "--province", "江苏", "--status", "filed"),
        ("sites", "add", "hq", "--name", "总部", "--tz", "Asia/Shanghai", "--company", "acme", "--province", "32"),
        ("posts", "add", "hq-gate", "--site", "hq", "--name", "北门"),
        ("devices", "add", "hq", "gate-1", "--post", "hq-gate"),
    ):
        out = run(*args, env=env)
        assert out.returncode == 0, out.stderr
    return env


def test_guard_with_identity_is_shown_masked(env) -> None:
    number = resident_id(15)
    out = run("guards", "add", "G-1", "--name", "张伟", "--id-number", number, "--employer", "acme", "--site", "hq",
              "--certificate", "JS2024000001", "--certificate-valid-until", "2099-12-31", env=env)  # fmt: skip
    masked = f"320102********{number[-4:]}"
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"added guard G-1 (张伟), ID {masked}, employed by acme, assigned to hq"
    shown = run("guards", "show", "G-1", "--json", env=env)
    document = json.loads(shown.stdout)
    assert document["id_number_masked"] == masked and document["certificate_status"] == "valid"
    assert document["sex"] == "male" and document["trajectory"][0]["company_id"] == "acme"
    text = run("guards", "show", "G-1", env=env).stdout
    assert "certificate: valid" in text and "acme at hq" in text
    again = run("guards", "add", "G-2", "--name", "Copy", "--id-number", number, env=env)
    assert (
        again.returncode == 2
        and again.stderr.strip() == f"error: resident ID number {masked} is already registered to guard G-1"
    )
    for out in (shown, again):
        assert number not in out.stdout + out.stderr
    stdin = subprocess.run(
        [sys.executable, "-m", "guardpost", "guards", "add", "G-3", "--name", "From stdin", "--id-number", "-"],
        input=resident_id(17) + "\n",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stdin.returncode == 0 and f"ID 320102********{resident_id(17)[-4:]}" in stdin.stdout, stdin.stderr
    bad_tz = run("sites", "add", "x", "--tz", "Beijing", env=env)
    assert bad_tz.returncode == 2 and "'Beijing' is not an IANA time zone name" in bad_tz.stderr


def test_import_reports_errors_as_a_table_and_a_csv_then_imports(env, tmp_path) -> None:
    source = tmp_path / "guards.csv"
    rows = [["guard_id", "name", "id_number", "site_ids"], ["G-1", "王芳", resident_id(26), "hq"],
            ["G-2", "李娜", resident_id(27)[:-1] + "Y", "hq;moon"]]  # fmt: skip
    with source.open("w", encoding="gb18030", newline="") as fh:
        csv.writer(fh).writerows(rows)
    report = tmp_path / "errors.csv"
    out = run("import", "guards", str(source), "--errors", str(report), env=env)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0].split() == ["line", "column", "message"]
    assert lines[1].split()[:2] == ["3", "id_number"] and "has 'Y' at position 18" in lines[1]
    assert lines[2].split()[:2] == ["3", "site_ids"] and "no site moon" in lines[2]
    assert lines[-1] == "error: guards.csv: 2 problem(s) found; nothing was imported"
    with report.open(encoding="utf-8-sig", newline="") as fh:
        assert [row[:2] for row in csv.reader(fh)] == [["line", "column"], ["3", "id_number"], ["3", "site_ids"]]
    assert resident_id(26) not in out.stdout + out.stderr
    rows[2][2], rows[2][3] = resident_id(27), "hq"
    with source.open("w", encoding="gb18030", newline="") as fh:
        csv.writer(fh).writerows(rows)
    dry = run("import", "guards", str(source), "--dry-run", env=env)
    assert dry.returncode == 0 and "dry run: all 2 guards in guards.csv can be imported" in dry.stdout
    done = run("import", "guards", str(source), env=env)
    assert done.returncode == 0 and done.stdout.strip() == "imported 2 guards from guards.csv", done.stderr
    postings = tmp_path / "postings.csv"
    postings.write_text("guard_id,site_id,start,end\nG-1,hq,2019-01-01,2020-01-01\n", encoding="utf-8")
    assert (
        run("import", "assignments", str(postings), env=env).stdout.strip()
        == "imported 1 assignments from postings.csv"
    )
    trajectory = json.loads(run("guards", "show", "G-1", "--json", env=env).stdout)["trajectory"]
    assert trajectory[0]["start"] == "2018-12-31T16:00:00+00:00"
    missing = run("import", "guards", str(tmp_path / "nope.csv"), env=env)
    assert missing.returncode == 2 and "nope.csv: no such file" in missing.stderr


def test_enrolling_one_face_under_two_guard_ids_warns(env, tmp_path) -> None:
    flipped = tmp_path / "flipped.jpg"
    Image.fromarray(np.ascontiguousarray(load_image_rgb(grace_hopper_path())[:, ::-1])).save(flipped, quality=95)
    for guard_id in ("G-1", "G-2"):
        assert run("guards", "add", guard_id, "--name", guard_id, "--face-consent", env=env).returncode == 0
    assert run("enroll", "G-1", str(grace_hopper_path()), env=env).returncode == 0
    out = run("enroll", "G-2", str(flipped), env=env)
    assert out.returncode == 0 and "[1/1]" in out.stdout and "enrolled" in out.stdout
    assert "warning: " in out.stderr and "matches guard G-1" in out.stderr and "duplicate_identity" in out.stderr
