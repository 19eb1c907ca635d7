"""Options and helpers that every `garrison` subcommand module shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from garrison.config import ConfigError, Settings, find_config, load_settings
from garrison.db.engine import migrate

ConfigOption = Annotated[
    Optional[Path],  # noqa: UP007 - typer needs Optional here
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $GARRISON_CONFIG, then ./var/garrison.toml).",
    ),
]


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit with status 1."""
    typer.echo(f"garrison: error: {message}", err=True)
    raise typer.Exit(1)


def settings_from(config: Path | None) -> Settings:
    """Load the config the way every command finds it, or exit with its error."""
    try:
        return load_settings(find_config(config))
    except ConfigError as exc:
        fail(str(exc))


def existing_setup(config: Path | None) -> Settings:
    """Return the settings of an initialised setup, with its database migrated."""
    settings = settings_from(config)
    if not settings.db_path.exists():
        fail(f"database {settings.db_path} not found; run 'garrison init' first")
    migrate(settings.db_path)
    return settings
