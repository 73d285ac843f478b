"""Browser tests skip on a machine without Chromium, with how to install it, but fail under CI."""

from __future__ import annotations

import pytest

from tests.support import browser


@pytest.fixture
def no_chromium(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "chromium"))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GUARDPOST_REQUIRE_BROWSER", raising=False)


def test_a_developer_machine_skips_with_the_install_command(no_chromium):
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y --no-install-recommends chromium"):
        browser.require_browser()


@pytest.mark.parametrize(("name", "value"), [("CI", "true"), ("CI", "1"), ("GUARDPOST_REQUIRE_BROWSER", "1")])
def test_ci_fails_instead(no_chromium, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        browser.require_browser()


def test_ci_false_is_not_ci(no_chromium, monkeypatch):
    monkeypatch.setenv("CI", "false")
    assert not browser.browser_required()
