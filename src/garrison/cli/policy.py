"""`garrison policy list|add|remove`: local allow and block lists.

Entries are stored in the database, so a change reaches every worker of a
running server within `reputation.policy_refresh_interval` seconds. The
entry syntax, the scopes and the precedence rules are described in
`garrison.governance.policy`.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from garrison.cli.common import ConfigOption, existing_setup, fail
from garrison.governance.policy import PolicyEntry, PolicyError, PolicyLists

policy_app = typer.Typer(
    no_args_is_help=True,
    help="Allow or block client networks, sender addresses and sender domains "
    "for the server, a domain or a user.",
)

ScopeOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional here
    typer.Option(
        "--scope",
        "-s",
        help="server, domain:example.org or user:alice@example.org.",
    ),
]


def _lists(config: Path | None) -> PolicyLists:
    return PolicyLists(existing_setup(config).db_path)


def _line(entry: PolicyEntry) -> str:
    moment = datetime.datetime.fromtimestamp(entry.created_at, tz=datetime.UTC)
    created = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{entry.id}\t{entry.scope}\t{entry.action}\t{entry.kind}\t{entry.entry}"
        f"\t{created}\t{entry.note}"
    )


@policy_app.command("list")
def policy_list(scope: ScopeOption = None, config: ConfigOption = None) -> None:
    """List entries: id, scope, action, kind, entry, creation time (UTC), note."""
    lists = _lists(config)
    try:
        entries = lists.list(scope)
    except PolicyError as exc:
        fail(str(exc))
    finally:
        lists.close()
    for entry in entries:
        typer.echo(_line(entry))
    typer.echo(f"{len(entries)} entries")


@policy_app.command("add")
def policy_add(
    action: Annotated[str, typer.Argument(help="allow or block.")],
    entry: Annotated[
        str,
        typer.Argument(
            help="IP address or CIDR network (192.0.2.0/24, 2001:db8::/32), "
            "sender address (user@example.com), or sender domain (example.com; "
            ".example.com also matches its subdomains)."
        ),
    ],
    scope: ScopeOption = None,
    note: Annotated[
        str, typer.Option("--note", "-n", help="Text stored with the entry.")
    ] = "",
    config: ConfigOption = None,
) -> None:
    """Add an allow or block entry (scope: server unless --scope is given)."""
    lists = _lists(config)
    try:
        added = lists.add(action, entry, scope or "server", note)
    except PolicyError as exc:
        fail(str(exc))
    finally:
        lists.close()
    typer.echo(f"added {_line(added)}")


@policy_app.command("remove")
def policy_remove(
    target: Annotated[
        str, typer.Argument(help="Entry id, or the entry text as 'policy list' shows.")
    ],
    scope: ScopeOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove an entry by id, or by its text (with --scope if in several scopes)."""
    lists = _lists(config)
    try:
        removed = lists.remove(target, scope)
    except PolicyError as exc:
        fail(str(exc))
    finally:
        lists.close()
    for entry in removed:
        typer.echo(f"removed {_line(entry)}")
