"""Scrape-token settings: env or file, never both, never short, no default."""

from __future__ import annotations

import pytest

from server.config import ConfigError
from server.metrics_access import TOKEN_ENV, TOKEN_FILE_ENV, load_access

TOKEN = "0123456789abcdef0123456789abcdef"


def test_no_setting_means_no_scrape_token():
    access = load_access({})
    assert access.scrape_token is None and not access.scrape_token_matches("") and not access.scrape_token_matches("x")


def test_token_from_env_matches_exactly_and_never_shows():
    access = load_access({TOKEN_ENV: TOKEN})
    assert access.scrape_token_matches(TOKEN)
    assert not access.scrape_token_matches(TOKEN.upper()) and not access.scrape_token_matches(TOKEN + " ")
    assert TOKEN not in repr(access) and TOKEN not in str(access.model_dump())


def test_token_from_file(tmp_path):
    path = tmp_path / "t"
    path.write_text(f"{TOKEN}\n")
    assert load_access({TOKEN_FILE_ENV: str(path)}).scrape_token_matches(TOKEN)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({TOKEN_ENV: TOKEN, TOKEN_FILE_ENV: "/x"}, "not both"),
        ({TOKEN_ENV: "short"}, "at least 24 characters"),
        ({TOKEN_ENV: "a b" * 20}, "without spaces"),
        ({TOKEN_FILE_ENV: "/nonexistent/token"}, "cannot read the metrics token file"),
    ],
)
def test_bad_settings_say_what_to_fix(env, message):
    with pytest.raises(ConfigError, match=message):
        load_access(env)


def test_empty_token_file(tmp_path):
    (tmp_path / "t").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_access({TOKEN_FILE_ENV: str(tmp_path / "t")})
