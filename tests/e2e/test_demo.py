"""`guardpost demo` (what `make demo` runs): check-ins reach the dashboard's API, Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from guardpost.broker import free_port
from guardpost.demo import CARD_NAME
from tests.support.services import port_open, wait_for

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                # The demo's children carry the var folder in their environment (GUARDPOST_DB).
                if any(text.encode() in (proc / name).read_bytes() for name in ("cmdline", "environ")):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def test_demo_shows_check_ins_and_stops_cleanly(tmp_path):
    var, port, log = tmp_path / "demo", free_port(), tmp_path / "demo.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")}
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "guardpost", "demo", "--var", str(var), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        found = wait_for(lambda: re.search(r"API token for scripts: (\S+)", log.read_text()), 90, "the API token")
        token = found.group(1)
        login = re.search(r"Dashboard: (\S+)/login \(user demo-admin, password (\S+)\)", log.read_text())
        base = login.group(1)
        assert base == f"http://127.0.0.1:{port}"
        page = urllib.request.urlopen(base + "/login", timeout=5).read().decode()
        assert "GuardPost" in page and 'name="password"' in page

        def check_ins():
            request = urllib.request.Request(
                base + "/api/v1/events?type=check_in", headers={"Authorization": f"Bearer {token}"}
            )
            return [e for e in json.loads(urllib.request.urlopen(request, timeout=5).read())["events"]]

        faces = {"Grace Hopper", "Eileen Collins"}
        # The card guard checks in every 15 s; on a busy machine she can come before the faces.
        events = wait_for(
            lambda: len(c := [e for e in check_ins() if e["guard_name"] in faces]) >= 2 and c,
            90,
            "two face check-ins from the simulated gate",
        )
        assert {e["method"] for e in events} == {"face"}
        assert {e["guard_name"] for e in check_ins()} <= faces | {CARD_NAME}
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert demo.wait(timeout=30) == 0, log.read_text()
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert not port_open("127.0.0.1", port)
    assert processes_mentioning(str(var)) == []
