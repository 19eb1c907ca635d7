"""`garrison ban list|add|remove`: client addresses banned by an administrator.

Bans are stored in the database, so they apply to every worker within
`limits.ban_refresh_interval` seconds and survive restarts. Automatic bans
after failed logins are stored too, with the reason "automatic: N failed
logins", so they are listed here and `remove` lifts them.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli.common import ConfigOption, existing_setup, fail
from garrison.net.bans import Ban, BanError, BanList

ban_app = typer.Typer(
    no_args_is_help=True,
    help="Ban client addresses from every listener (stored in the database).",
)


def _bans(config: Path | None) -> BanList:
    return BanList(existing_setup(config).db_path)


def _describe(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(ban: Ban) -> str:
    return f"{ban.network}\texpires={_describe(ban.expires_at)}\t{ban.reason}"


@ban_app.command("list")
def ban_list(config: ConfigOption = None) -> None:
    """List the stored bans in force: network, expiry time (UTC), reason."""
    bans = _bans(config)
    try:
        rows = bans.list()
    finally:
        bans.close()
    for ban in rows:
        typer.echo(_line(ban))
    typer.echo(f"{len(rows)} bans")


@ban_app.command("add")
def ban_add(
    network: Annotated[
        str, typer.Argument(help="IP address or CIDR network, e.g. 192.0.2.7.")
    ],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Note stored with the ban.")
    ] = "",
    duration: Annotated[
        float | None,  # noqa: UP007 - typer needs Optional here
        typer.Option(
            "--duration", "-d", min=1, help="Seconds the ban lasts (default: no end)."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Ban a client address or network; new connections from it are rejected."""

    bans = _bans(config)
    try:
        ban = bans.add(network, reason, duration)
    except BanError as exc:
        fail(str(exc))
    finally:
        bans.close()
    typer.echo(f"banned {_line(ban)}")


@ban_app.command("remove")
def ban_remove(
    network: Annotated[
        str, typer.Argument(help="IP address or CIDR network, as 'ban list' shows.")
    ],
    config: ConfigOption = None,
) -> None:
    """Remove a stored ban."""

    bans = _bans(config)
    try:
        bans.remove(network)
    except BanError as exc:
        fail(str(exc))
    finally:
        bans.close()
    typer.echo(f"removed ban of {network}")
