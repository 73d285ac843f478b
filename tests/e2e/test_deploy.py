"""The shipped systemd units and the gunicorn production path, checked with the real tools and processes."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from guardpost.broker import free_port
from tests.support.services import port_open, wait_for

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALL_DIR = "/opt/guardpost"  # where deployment.md puts the checkout; the tests use this one instead
SCRAPE_TOKEN = "t" * 32
needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine"
)


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".target"))


def localised(tmp_path: Path) -> list[Path]:
    """The units with the install directory pointing at this checkout, so their commands exist."""
    copies = []
    for unit in unit_files():
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALL_DIR, str(ROOT)))
        copies.append(copy)
    return copies


def exec_lines() -> list[tuple[str, list[str]]]:
    found = []
    for unit in unit_files():
        for line in unit.read_text().splitlines():
            if match := re.match(r"^(ExecStart|ExecStartPre|ExecStartPost)=(.*)$", line):
                found.append((unit.name, shlex.split(match.group(2).lstrip("-+!@:"))))
    return found


def test_the_server_units_are_all_there():
    names = {p.name for p in unit_files()}
    assert {
        "guardpost-web.service",
        "guardpost-ingest@.service",
        "guardpost-monitor.service",
        "guardpost-migrate.service",
        "guardpost.target",
    } <= names
    assert (ROOT / "firmware_notes" / "guardpost-agent.service").is_file()  # the agent's unit lives there


@needs_systemd_analyze
def test_units_pass_systemd_analyze_verify(tmp_path):
    copies = localised(tmp_path)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, copies)], capture_output=True, text=True, timeout=60
    )
    # Unknown or misspelt keys are only warnings (exit 0): any line about our units is a failure too.
    ours = [line for line in (out.stdout + out.stderr).splitlines() if str(tmp_path) in line or "guardpost" in line]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", ["guardpost-web.service", "guardpost-ingest@.service", "guardpost-monitor.service"])
def test_units_are_hardened(tmp_path, unit):
    copy = next(p for p in localised(tmp_path) if p.name == unit)
    text = copy.read_text()
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=yes", "EnvironmentFile=", "Restart=on-failure"):
        assert setting in text, f"{unit} lacks {setting}"
    # systemd's own exposure score, 0 (locked down) to 10 (unprotected): ours must stay at or below 2.
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr


@pytest.mark.parametrize(("unit", "argv"), exec_lines(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_exec_command_and_flag_exists(unit, argv):
    program = Path(argv[0].replace(INSTALL_DIR, str(ROOT)))
    if argv[0].startswith(INSTALL_DIR + "/.venv/bin/"):
        program = Path(sys.executable).parent / program.name  # this checkout's virtual environment
    assert program.is_file() and os.access(program, os.X_OK), f"{unit}: {argv[0]} does not exist here"
    words = [a for a in argv[1:] if not a.startswith("-")]
    flags = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")]
    for arg in argv[1:]:
        if arg.startswith(INSTALL_DIR):
            assert Path(arg.replace(INSTALL_DIR, str(ROOT))).exists(), f"{unit}: {arg} is not in the repository"
    subcommands = [] if program.name == "gunicorn" else words[: len(words)]
    # Values of flags are not subcommands: keep the words before the first flag.
    if program.name == "guardpost":
        first_flag = next((i for i, a in enumerate(argv[1:]) if a.startswith("-")), len(argv) - 1)
        subcommands = argv[1 : 1 + first_flag]
    helped = subprocess.run([str(program), *subcommands, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, f"{unit}: {' '.join(argv)}: {helped.stderr}"
    for flag in flags:
        assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", helped.stdout), f"{unit}: no flag {flag} in {argv}"


def gunicorn(env: dict[str, str]) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "server.wsgi:app",
        ],
        cwd=ROOT,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_gunicorn_serves_the_app_and_stops_on_sigterm(db_url):
    port = free_port()
    proc = gunicorn(
        {
            "GUARDPOST_DB": db_url,
            "GUARDPOST_BIND": f"127.0.0.1:{port}",
            "GUARDPOST_WEB_WORKERS": "2",
            "GUARDPOST_METRICS_TOKEN": SCRAPE_TOKEN,
        }
    )
    try:
        wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 60, "gunicorn to listen")
        assert proc.poll() is None, proc.communicate()[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=10) as resp:
            assert resp.status == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}
        )
        for _ in range(4):  # whichever worker answers
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert "guardpost_events_stored_total 0" in resp.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # gunicorn's own log goes to stderr (journald); no control socket in $HOME
    assert "Booting worker" in err and "Shutting down" in err and "Control socket" not in err


def test_a_bad_setting_stops_gunicorn_with_one_line(db_url):
    proc = gunicorn({"GUARDPOST_DB": db_url, "GUARDPOST_BIND": f"127.0.0.1:{free_port()}", "GUARDPOST_MQTT": "ftp://x"})
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2  # checked once in the master, before any worker starts
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "GUARDPOST_MQTT" in lines[0], err
    assert "Traceback" not in err


def test_guardpost_monitor_works_the_duty_queue_and_stops_on_sigterm(db_url):
    from datetime import date

    from sqlalchemy import func, select

    from server.db import make_engine, make_sessionmaker
    from server.duty.service import mark_dirty
    from server.duty.tables import DutyDirty
    from server.registry import ensure_site

    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        ensure_site(s, "site-m")
        mark_dirty(s, [("site-m", date(2026, 4, 1)), ("site-m", date(2026, 4, 2))])
        s.commit()

    def queued() -> int:
        with sessions() as s:
            return s.scalar(select(func.count()).select_from(DutyDirty))

    assert queued() == 2
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardpost", "monitor", "--every", "0.5"],
        env={**base, "GUARDPOST_DB": db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: queued() == 0 or proc.poll() is not None, 60, "the monitor to recompute the queued days")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "GuardPost monitor" in out and queued() == 0
    engine.dispose()
