"""Load and validate `garrison.toml`.

`load_settings(path)` returns a frozen `Settings` or raises `ConfigError`
whose message names the offending key and says what is expected. Relative
paths in the file are resolved against the file's directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from garrison.config.schema import Settings

DEFAULT_CONFIG = Path("var/garrison.toml")
CONFIG_ENV = "GARRISON_CONFIG"


class ConfigError(Exception):
    """Invalid or missing configuration; the message is shown to the admin."""


def find_config(explicit: Path | None) -> Path:
    """Return the config path: the option, then $GARRISON_CONFIG, then ./var."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return DEFAULT_CONFIG


def _key_path(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(item)
    return ".".join(parts)


def _describe(error: ValidationError, path: Path) -> str:
    first = error.errors()[0]
    key = _key_path(tuple(first["loc"]))
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key {key!r}; remove it or check its spelling"
    return f"{path}: invalid value for {key!r}: {first['msg']}"


def parse_settings(data: dict, path: Path) -> Settings:
    """Validate a parsed TOML document and resolve its relative paths."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None

    base = path.parent.resolve()
    data_dir = settings.server.data_dir
    if not data_dir.is_absolute():
        data_dir = (base / data_dir).resolve()
    tls = settings.tls
    cert = tls.cert_file if tls.cert_file.is_absolute() else data_dir / tls.cert_file
    key = tls.key_file if tls.key_file.is_absolute() else data_dir / tls.key_file

    names = [listener.name for listener in settings.listeners]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(
            f"{path}: listener name {duplicates[0]!r} is used twice; names must be unique"
        )
    return settings.model_copy(
        update={
            "server": settings.server.model_copy(update={"data_dir": data_dir}),
            "tls": tls.model_copy(update={"cert_file": cert, "key_file": key}),
        }
    )


def load_settings(path: Path) -> Settings:
    """Read, validate and return the settings in `path`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; create one with "
            "'garrison init --data-dir DIR' or pass --config"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_settings(data, path)
