import tomllib
from pathlib import Path

import pytest

from garrison.config import ConfigError, Settings, load_settings
from garrison.config.loader import find_config, parse_settings
from garrison.config.sample import render_sample


def test_sample_parses_back_to_defaults(tmp_path: Path) -> None:
    sample = render_sample()
    settings = parse_settings(tomllib.loads(sample), tmp_path / "garrison.toml")
    defaults = Settings()
    assert settings.smtp == defaults.smtp
    assert settings.imap == defaults.imap
    assert settings.listeners[0].port == 25


def test_sample_documents_every_key() -> None:
    sample = render_sample()
    for name, field in type(Settings().smtp).model_fields.items():
        assert f"{name} = " in sample
        assert field.description is not None
        assert f"# {field.description}" in sample


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text("[smtp]\nmax_mesage_size = 10\n")
    with pytest.raises(ConfigError, match=r"unknown key 'smtp\.max_mesage_size'"):
        load_settings(path)


def test_invalid_value_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text(
        '[[listeners]]\nname = "x"\nprotocol = "smtp"\nport = 70000\n'
    )
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.port"):
        load_settings(path)


def test_bad_tls_mode_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text('[[listeners]]\nname = "x"\nprotocol = "smtp"\nport = 25\ntls = "yes"\n')
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.tls"):
        load_settings(path)


def test_duplicate_listener_names_rejected(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    block = '[[listeners]]\nname = "a"\nprotocol = "smtp"\nport = 25\n'
    path.write_text(block + block)
    with pytest.raises(ConfigError, match="'a' is used twice"):
        load_settings(path)


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "garrison.toml"
    path.parent.mkdir()
    path.write_text('[server]\ndata_dir = "../data"\n')
    settings = load_settings(path)
    assert settings.server.data_dir == (tmp_path / "data").resolve()
    assert settings.tls.cert_file == (tmp_path / "data" / "tls" / "cert.pem").resolve()
    assert settings.db_path == (tmp_path / "data" / "garrison.db").resolve()


def test_missing_file_message_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="garrison init"):
        load_settings(tmp_path / "absent.toml")


def test_invalid_toml_reported(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text("[smtp\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(path)


def test_config_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GARRISON_CONFIG", str(tmp_path / "env.toml"))
    assert find_config(tmp_path / "opt.toml") == tmp_path / "opt.toml"
    assert find_config(None) == tmp_path / "env.toml"
    monkeypatch.delenv("GARRISON_CONFIG")
    assert find_config(None) == Path("var/garrison.toml")


def test_committed_sample_is_current() -> None:
    committed = Path(__file__).parents[2] / "docs" / "garrison.sample.toml"
    assert committed.read_text() == render_sample() + "\n", (
        "docs/garrison.sample.toml is stale; regenerate it with "
        "'garrison config sample > docs/garrison.sample.toml'"
    )


def test_invalid_value_is_quoted_in_message(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text("[server]\nworkers = -3\n")
    with pytest.raises(ConfigError, match=r"invalid value -3 for 'server\.workers'"):
        load_settings(path)


def test_listener_address_must_be_ip(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text(
        '[[listeners]]\nname = "x"\nprotocol = "smtp"\nport = 25\naddress = "999.1.1.1"\n'
    )
    with pytest.raises(ConfigError, match=r"'999\.1\.1\.1' for 'listeners\[0\]\.address'"):
        load_settings(path)


def test_hostname_must_be_a_host_name(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text('[server]\nhostname = "bad host!"\n')
    with pytest.raises(ConfigError, match="server.hostname"):
        load_settings(path)


def test_two_listeners_on_one_port_rejected(tmp_path: Path) -> None:
    path = tmp_path / "garrison.toml"
    path.write_text(
        '[[listeners]]\nname = "a"\nprotocol = "smtp"\nport = 2525\n'
        '[[listeners]]\nname = "b"\nprotocol = "imap"\nport = 2525\n'
    )
    with pytest.raises(ConfigError, match="'a' and 'b' both use 127.0.0.1 port 2525"):
        load_settings(path)


def test_runtime_check_names_missing_certificate(tmp_path: Path) -> None:
    from garrison.config.loader import check_runtime

    path = tmp_path / "garrison.toml"
    path.write_text("")
    settings = load_settings(path)
    with pytest.raises(ConfigError, match=r"tls\.cert_file: file .*cert\.pem not found"):
        check_runtime(settings)
