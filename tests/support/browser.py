"""Headless Chromium for browser tests: Debian's package driven by Playwright; missing, it skips (fails under CI)."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "Chromium is not installed: run 'make browser' (apt-get install -y --no-install-recommends chromium)"


def browser_required() -> bool:
    """Under CI (CI=1/true, or GUARDPOST_REQUIRE_BROWSER=1 as .ci/run sets) a missing browser is a failure."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("GUARDPOST_REQUIRE_BROWSER") == "1"


def missing_browser() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return INSTALL_HINT
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: run 'make install' (it is in the dev extra)"
    return None


def require_browser() -> None:
    problem = missing_browser()
    if problem is None:
        return
    if browser_required():
        pytest.fail(f"{problem} (browser tests are required under CI)", pytrace=False)
    pytest.skip(problem)
