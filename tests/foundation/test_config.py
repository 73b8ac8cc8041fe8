from pathlib import Path

import pytest

from odted.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_serve_on_loopback_8080_with_embedded_database():
    cfg = load_config(None, env={})
    assert cfg.server.bind == "127.0.0.1:8080"
    assert cfg.database.url == ""
    assert cfg.bind_host_port == ("127.0.0.1", 8080)


def test_shipped_config_file_matches_the_defaults():
    assert load_config(ROOT / "config" / "odted.toml", env={}) == load_config(None, env={})


def test_unknown_key_is_an_error_naming_it(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[server]\nbnd = '1.2.3.4:5'\n")
    with pytest.raises(ConfigError, match=r"server\.bnd: unknown setting"):
        load_config(p, env={})


def test_unknown_section_is_an_error_naming_it(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[serverr]\nbind = '1.2.3.4:5'\n")
    with pytest.raises(ConfigError, match=r"serverr: unknown setting"):
        load_config(p, env={})


def test_wrong_type_is_an_error_naming_the_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[database]\npool_max = 'many'\n")
    with pytest.raises(ConfigError, match=r"database\.pool_max"):
        load_config(p, env={})


def test_malformed_bind_is_rejected():
    with pytest.raises(ConfigError, match=r"server"):
        load_config(None, env={}, overrides={"server.bind": "localhost"})


def test_environment_overrides_the_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[database]\npool_max = 4\n")
    cfg = load_config(p, env={"ODTED_DATABASE_POOL_MAX": "7", "ODTED_SERVER_BIND": "0.0.0.0:9000"})
    assert cfg.database.pool_max == 7
    assert cfg.server.bind == "0.0.0.0:9000"


def test_environment_reaches_lists_and_booleans():
    cfg = load_config(None, env={"ODTED_AUTH_STATIC_TOKENS": '["a", "b"]'})
    assert cfg.auth.static_tokens == ["a", "b"]


def test_unknown_environment_setting_is_an_error():
    with pytest.raises(ConfigError, match="ODTED_SERVER_BINDD"):
        load_config(None, env={"ODTED_SERVER_BINDD": "x"})


def test_wrong_type_from_the_environment_names_the_key():
    with pytest.raises(ConfigError, match=r"database\.pool_max"):
        load_config(None, env={"ODTED_DATABASE_POOL_MAX": "lots"})


def test_config_is_immutable():
    cfg = load_config(None, env={})
    with pytest.raises(AttributeError):
        cfg.server = None  # type: ignore[misc]
    assert isinstance(cfg, Config)
