"""``guardpost export attendance`` as a user runs it: files, progress bar on a terminal, one-line failures."""

from __future__ import annotations

import csv
import os
import pty
import stat
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from server.db import make_engine, make_sessionmaker
from tests.support.exports import EVIL_NAME, MONTH, seed

pytestmark = pytest.mark.slow


def run(*args: str, env: dict[str, str], stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    command = [sys.executable, "-m", "guardpost", "export", "attendance", "--month", MONTH, *args]
    return subprocess.run(command, env=base | env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120)


@pytest.fixture
def folder(tmp_path):
    """Where the files go (the SQLite database lives in tmp_path itself)."""
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as session:
        seed(session)
    engine.dispose()
    return {"GUARDPOST_DB": db_url}


def test_an_xlsx_for_one_site(env, folder):
    out = folder / "north.xlsx"
    done = run("--site", "north", "--out", str(out), "--locale", "en", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 61 rows for 2 guards (2026-11, site-north) to {out}"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == ["north.xlsx"]  # no partial file left behind
    book = load_workbook(out)
    rows = list(book["Attendance"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == 61 and {r[6] for r in rows} == {"north", None}
    names = {cell.value: cell.data_type for cell in book["Attendance"]["C"][1:]}
    assert names == {"'" + EVIL_NAME: "s", "李娜": "s"}
    assert [r[0] for r in book["Totals"].iter_rows(min_row=2, values_only=True)] == ["g-evil", "g-north"]


def test_a_csv_for_a_company_writes_rows_and_totals(env, folder):
    out = folder / "acme.csv"
    done = run("--company", "acme", "--format", "csv", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    totals = folder / "acme.totals.csv"
    assert done.stdout.strip().endswith(f"to {out} and {totals}")
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["保安员编号"] for r in rows} == {"g-evil", "g-north", "g-south"}  # GUARDPOST_LOCALE unset: zh
    assert all("*" in r["身份证号（脱敏）"] for r in rows if r["身份证号（脱敏）"])
    with totals.open(encoding="utf-8-sig", newline="") as fh:
        assert [r["保安员编号"] for r in csv.DictReader(fh)] == ["g-evil", "g-north", "g-south"]
    assert stat.S_IMODE(totals.stat().st_mode) == 0o600


def test_a_users_scope_limits_and_refuses(env, folder):
    refused = run("--site", "south", "--user", "supervisor", "--out", str(folder / "x.xlsx"), env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: site south is outside this user's scope (sites north)"
    mine = run("--user", "supervisor", "--out", str(folder / "mine.csv"), env=env)
    assert mine.returncode == 0 and "for 2 guards" in mine.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--site", "nowhere", "--out", "{tmp}/x.xlsx"), "error: no site nowhere in the database"),
        (("--out", "{tmp}/x.pdf"), "error: give --format xlsx or csv (the file name x.pdf does not say which)"),
        (("--format", "csv", "--out", "{tmp}/x.xlsx"), "error: --out {tmp}/x.xlsx does not end in .csv"),
        (("--out", "{tmp}/missing/x.xlsx"), "error: folder {tmp}/missing does not exist"),
    ],
)
def test_mistakes_are_one_line_with_exit_code_2(env, folder, args, message):
    done = run(*(a.format(tmp=folder) for a in args), env=env)
    assert done.returncode == 2 and done.stderr.strip().startswith(message.format(tmp=folder)), done.stderr
    assert not list(folder.glob("*.xlsx"))


def test_a_bad_month_is_one_line(env, folder):
    command = [sys.executable, "-m", "guardpost", "export", "attendance", "--month", "2026-13"]
    done = subprocess.run(
        [*command, "--out", str(folder / "x.xlsx")], env=os.environ | env, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.strip() == "error: month must look like 2026-11, got '2026-13'"


def test_the_progress_bar_shows_on_a_terminal(env, folder):
    leader, follower = pty.openpty()
    try:
        done = run("--out", str(folder / "all.xlsx"), env=env, stderr=follower)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert b"] 100% 4/4" in shown and b"] " in shown.split(b"100%")[0]
