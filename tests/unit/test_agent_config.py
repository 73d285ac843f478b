"""Terminal configs: every shipped file loads; broken ones fail with one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "device_configs").glob("*.toml"))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert config.device_id and config.site_id
    assert config.recognition.threshold <= config.recognition.borderline_threshold


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


BASE = 'device_id = "gate-1"\nsite_id = "site-a"\n'


@pytest.mark.parametrize(
    "text, message",
    [
        ("device_id = ", "not valid TOML"),
        ('site_id = "s"\n', "device_id: Field required"),
        (BASE + "colour = 1\n", "colour: Extra inputs are not permitted"),
        (BASE + "[recognition]\nthreshold = 3.0\n", "recognition.threshold"),
        (BASE + "[recognition]\nthreshold = 0.6\nborderline_threshold = 0.5\n", "borderline_threshold must be"),
        ('device_id = "gate/1"\nsite_id = "s"\n', "device_id"),
        (BASE + '[mqtt]\nurl = "http://x"\n', "mqtt.url"),
    ],
)
def test_broken_configs_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_readable(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config .*nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_relative_paths_are_resolved_from_the_config_folder(tmp_path):
    config = load_config(
        write(tmp_path, BASE + 'secret_file = "secret"\nstate_dir = "state"\n[source]\nspec = "frames"\n')
    )
    assert config.secret_file == tmp_path / "secret"
    assert config.state_dir == tmp_path / "state"
    assert config.source.spec == str(tmp_path / "frames")
    assert load_config(write(tmp_path, BASE + '[source]\nspec = "camera:2"\n')).source.spec == "camera:2"


def test_secrets_come_from_file_or_env_never_a_default(tmp_path, monkeypatch):
    monkeypatch.delenv("GUARDPOST_DEVICE_SECRET", raising=False)
    config = load_config(write(tmp_path, BASE))
    with pytest.raises(ConfigError, match="no terminal secret"):
        config.secret()
    monkeypatch.setenv("GUARDPOST_DEVICE_SECRET", "from-env")
    assert config.secret() == "from-env"
    monkeypatch.delenv("GUARDPOST_DEVICE_SECRET")
    (tmp_path / "s").write_text("from-file\n")
    assert load_config(write(tmp_path, BASE + 'secret_file = "s"\n')).secret() == "from-file"
    with pytest.raises(ConfigError, match="cannot read the terminal secret file"):
        load_config(write(tmp_path, BASE + 'secret_file = "missing"\n')).secret()
