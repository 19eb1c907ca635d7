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
    if first["type"] == "missing":
        return f"{path}: missing key {key!r}; it is required"
    reason = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if isinstance(value, dict | list) or value is None:
        return f"{path}: invalid value for {key!r}: {reason}"
    return f"{path}: invalid value {value!r} for {key!r}: {reason}"


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
    bound: dict[tuple[str, int], str] = {}
    for listener in settings.listeners:
        endpoint = (listener.address, listener.port)
        if listener.port and endpoint in bound:
            raise ConfigError(
                f"{path}: listeners {bound[endpoint]!r} and {listener.name!r} both use"
                f" {listener.address} port {listener.port}; give each its own port"
            )
        bound[endpoint] = listener.name
    return settings.model_copy(
        update={
            "server": settings.server.model_copy(update={"data_dir": data_dir}),
            "tls": tls.model_copy(update={"cert_file": cert, "key_file": key}),
        }
    )


def check_runtime(settings: Settings) -> None:
    """Check what `serve` needs beyond the schema: readable TLS files that match."""
    import ssl

    for key, file in (("tls.cert_file", settings.tls.cert_file),
                      ("tls.key_file", settings.tls.key_file)):
        if not file.is_file():
            raise ConfigError(
                f"{key}: file {file} not found; point it at a PEM file or run "
                "'garrison init' to create a self-signed certificate"
            )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"tls.cert_file {settings.tls.cert_file} and tls.key_file"
            f" {settings.tls.key_file} cannot be loaded: {exc}"
        ) from None


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
