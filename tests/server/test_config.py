"""Configuration: defaults, file, environment, overrides, validation, and its documentation."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from server.config import Config, ConfigError, env_name, iter_keys, load_config
from tests.conftest import REPO


def test_config_yaml_mirrors_every_default() -> None:
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    flat = {f"{s}.{k}": v for s, body in data.items() for k, v in body.items()}
    assert sorted(flat) == sorted(iter_keys()), "config.yaml must list every key, and only known keys"
    defaults = Config()
    for key, value in flat.items():
        section, name = key.split(".")
        value = tuple(value) if isinstance(value, list) else value  # YAML lists load as tuples
        assert getattr(getattr(defaults, section), name) == value, f"{key}: config.yaml differs from the default"
    assert load_config(REPO / "config.yaml", env={}) == defaults


def test_every_key_is_documented() -> None:
    doc = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_]+\.[a-z0-9_]+)` \|", doc, flags=re.MULTILINE))
    missing = [k for k in iter_keys() if k not in documented]
    assert not missing, f"undocumented config keys in docs/config.md: {missing}"
    assert documented <= set(iter_keys()), f"docs/config.md documents unknown keys: {documented - set(iter_keys())}"


def test_every_key_has_a_comment_in_config_yaml() -> None:
    lines = (REPO / "config.yaml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^  [a-z_]+:", line):
            assert lines[i - 1].strip().startswith("#"), f"config.yaml line {i + 1} has no comment: {line}"


def test_precedence_file_env_override(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  port: 9001\n  host: 0.0.0.0\nbus:\n  backend: redis\n", encoding="utf-8")
    config = load_config(path, env={"DIEMCAU_SERVER_PORT": "9002"}, overrides={"server.host": "127.0.0.2"})
    assert config.server.port == 9002  # env beats file
    assert config.server.host == "127.0.0.2"  # override beats file
    assert config.bus.backend == "redis"  # file beats default
    assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("server:\n  port: 70000\n", "server.port"),
        ("server:\n  port: eighty\n", "server.port"),
        ("bus:\n  backend: kafka\n", "bus.backend"),
        ("server:\n  prot: 1\n", "server.prot"),
        ("sever:\n  port: 1\n", "sever"),
        ("auth:\n  session_ttl_hours: -1\n", "auth.session_ttl_hours"),
        ("signalling:\n  heartbeat_s: [1]\n", "signalling.heartbeat_s"),
        ("server: [1, 2]\n", "server"),
        ("server:\n  port: 1.5\n", "server.port"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(key)


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^server\.port"):
        load_config(None, env={env_name("server.port"): "abc"})
    with pytest.raises(ConfigError, match=r"^i18n\.default_locale"):
        load_config(None, env={"DIEMCAU_I18N_DEFAULT_LOCALE": "fr"})


def test_unreadable_or_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", env={})
    bad = tmp_path / "x.yaml"
    bad.write_text("server: {port: [}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, env={})


def test_database_url_defaults_to_sqlite_under_data_dir(tmp_path: Path) -> None:
    config = load_config(None, env={}, overrides={"server.data_dir": str(tmp_path)})
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/diemcau.sqlite3"
    assert config.replace(**{"store.url": "postgresql+asyncpg://x/y"}).database_url == "postgresql+asyncpg://x/y"
