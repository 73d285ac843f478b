"""The reporting config: the shipped example is valid and covers the example province's item list; mistakes
are refused with one line naming the setting; the secret comes only from the environment or a file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from server.config import ConfigError
from server.reporting.config import ReportingConfig, load_config, load_secret
from server.reporting.receiver import load_items

EXAMPLE = Path(__file__).parents[2] / "docs" / "reporting.example.toml"


def example_data() -> dict:
    return tomllib.loads(EXAMPLE.read_text("utf-8"))


def validate(**changes) -> ReportingConfig:
    data = example_data()
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for name in parents:
            node = node[name]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return ReportingConfig.model_validate(data)


def test_the_example_config_is_valid_and_maps_every_required_item_of_the_example_province():
    config = load_config(EXAMPLE)
    assert config.province == "440000"
    assert set(config.mapping) == {"guards", "assignments", "duty_logs", "findings"}
    items = load_items(None)
    for kind, mapping in config.mapping.items():
        required = items.required[config.dataset(kind)]
        assert set(required) <= set(mapping.items), (kind, set(required) - set(mapping.items))
    # The police system may need full ID numbers for guards; a work log does not.
    assert config.mapping["guards"].specs()["ZJHM"].number == "full"
    assert config.mapping["duty_logs"].specs()["ZJHM"].number == "masked"
    assert config.needs_full_numbers()


def test_relative_paths_are_taken_from_the_config_folder(tmp_path):
    text = EXAMPLE.read_text("utf-8").replace('"/etc/guardpost/reporting.secret"', '"secrets/reporting.secret"')
    (tmp_path / "reporting.toml").write_text(text, "utf-8")
    config = load_config(tmp_path / "reporting.toml")
    assert config.secret_file == tmp_path / "secrets" / "reporting.secret"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batchsize": 10}, "batchsize"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 100_000}, "batch_size"),
        ({"retry__max_delay_s": 1.0}, "max_delay_s must be at least base_delay_s"),
        ({"retry__max_attempts": 0}, "max_attempts"),
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"endpoint": "ftp://example.invalid/"}, "http(s) URL"),
        ({"endpoint": "http://province.example.invalid/upload"}, "must use https"),
        ({"secret_env": "GP_SECRET"}, "exactly one of secret_env or secret_file"),
        ({"secret_file": None}, "exactly one of secret_env or secret_file"),
        ({"mapping": {}}, "mapping"),
        ({"mapping__guards__items__XM": "nickname"}, "guards has no field 'nickname'"),
        ({"mapping__guards__items__XM": {"field": "name", "format": "%Y"}}, "format applies to dates and times"),
        ({"mapping__guards__items__XM": {"field": "name", "number": "full"}}, "number (masked/full) applies"),
        ({"mapping__guards__items__CSRQ": {"field": "birth_date", "map": {"a": "b"}}}, "map applies to text"),
        ({"mapping__guards__items__XM": {"field": "name", "constant": "x"}}, "exactly one of field or constant"),
        ({"mapping__guards__items__XM": {"field": "name", "default": "x"}}, "default only applies together with map"),
        ({"mapping__guards__items__XM": {"field": "name", "colour": "red"}}, "colour"),
        ({"mapping__payroll": {"items": {"A": "guard_id"}}}, "payroll"),
    ],
)
def test_mistakes_are_refused_naming_the_setting(changes, message):
    with pytest.raises(ValueError) as caught:
        validate(**changes)
    assert message in str(caught.value)


def test_plain_http_is_allowed_to_localhost_or_when_explicitly_insecure():
    assert validate(endpoint="http://127.0.0.1:9000/upload").endpoint.startswith("http://")
    assert validate(endpoint="http://lab.example.invalid/upload", insecure_http=True)


def test_load_config_gives_one_line_with_the_file_and_the_setting(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(EXAMPLE.read_text("utf-8").replace("batch_size = 200", "batch_size = -1"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"reporting config {path}: batch_size:")
    assert "\n" not in str(caught.value)
    path.write_text("endpoint = ", "utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read reporting config"):
        load_config(tmp_path / "missing.toml")


def test_the_secret_comes_from_the_named_variable_or_file_and_never_shows(tmp_path, monkeypatch):
    config = validate(secret_file=None, secret_env="GP_TEST_REPORTING_SECRET")
    monkeypatch.delenv("GP_TEST_REPORTING_SECRET", raising=False)
    with pytest.raises(ConfigError, match="set GP_TEST_REPORTING_SECRET"):
        load_secret(config)
    monkeypatch.setenv("GP_TEST_REPORTING_SECRET", "short")
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_secret(config)
    monkeypatch.setenv("GP_TEST_REPORTING_SECRET", "a-long-enough-secret-value")
    secret = load_secret(config)
    assert secret.reveal() == "a-long-enough-secret-value"
    assert "a-long" not in repr(secret) and "a-long" not in str(secret) and "a-long" not in f"{secret}"

    config = validate(secret_file=str(tmp_path / "nope.secret"))
    with pytest.raises(ConfigError, match="cannot read the reporting secret file"):
        load_secret(config)
    (tmp_path / "nope.secret").write_text("from-a-file-0123456789\n")
    assert load_secret(config).reveal() == "from-a-file-0123456789"
