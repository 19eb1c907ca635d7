"""The `garrison` command: noun-verb subcommands.

Every command that works on an existing setup takes its config from
`--config`, then `$GARRISON_CONFIG`, then `./var/garrison.toml`. Passwords are
read from standard input (`--password-stdin`) or a prompt, never from an
argument, so they do not show in process listings or shell history.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from garrison.cli.common import ConfigOption, existing_setup, fail, settings_from
from garrison.config import ConfigError
from garrison.config.loader import check_runtime
from garrison.config.sample import render_sample
from garrison.directory import Directory, DirectoryError
from garrison.dkim import DKIMKeyError, DKIMKeyStore
from garrison.dkim.keys import zone_file_line
from garrison.server.admin import SetupError, add_user, initialize

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Garrison mail server: SMTP, IMAP and POP3 for many domains.",
)
domain_app = typer.Typer(no_args_is_help=True, help="Manage local domains.")
user_app = typer.Typer(no_args_is_help=True, help="Manage user accounts.")
alias_app = typer.Typer(no_args_is_help=True, help="Manage address aliases.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
dkim_app = typer.Typer(no_args_is_help=True, help="Manage DKIM signing keys.")
app.add_typer(domain_app, name="domain")
app.add_typer(user_app, name="user")
app.add_typer(alias_app, name="alias")
app.add_typer(config_app, name="config")
app.add_typer(dkim_app, name="dkim")

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input."),
]


def open_directory(config: Path | None) -> Directory:
    return Directory(existing_setup(config).db_path)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            fail("no terminal for a password prompt; use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            fail("the passwords do not match")
    if not password:
        fail("empty password")
    return password


@app.command()
def init(
    data_dir: Annotated[Path, typer.Option(help="Directory to create the setup in.")],
    hostname: Annotated[
        str, typer.Option(help="Host name for greetings and the certificate.")
    ] = "mail.example.test",
    domain: Annotated[str, typer.Option(help="First local domain.")] = "example.test",
    standard_ports: Annotated[
        bool,
        typer.Option(
            "--standard-ports",
            help="Listen on 25, 587, 465, 143, 993, 110 and 995 instead of the "
            "development ports.",
        ),
    ] = False,
    listen: Annotated[
        str, typer.Option(help="Address every listener binds to.")
    ] = "127.0.0.1",
) -> None:
    """Create a config, database, self-signed certificate, domain and first user."""
    try:
        result = initialize(
            data_dir, hostname, domain, standard_ports=standard_ports,
            listen_address=listen,
        )
    except (SetupError, DirectoryError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot create {data_dir}: {exc.strerror}")
    typer.echo(f"created {result.config_path}")
    typer.echo(f"user {result.user} password: {result.password}")
    typer.echo("(the password is shown only once; change it with 'garrison user passwd')")


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Run the mail server until SIGTERM or SIGINT."""
    from garrison.observability.log import setup_logging
    from garrison.server.supervisor import ListenerBindError, supervise

    settings = settings_from(config)
    try:
        check_runtime(settings)
    except ConfigError as exc:
        fail(str(exc))
    setup_logging(settings.server.log_level)
    try:
        status = supervise(settings)
    except ListenerBindError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot start: {exc}")
    except ValueError as exc:
        fail(str(exc))
    if status:
        fail("a worker process failed to start; see the log lines above")


@config_app.command("sample")
def config_sample() -> None:
    """Print a documented sample config with every key and its default."""
    typer.echo(render_sample())


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the config file and report the first problem."""
    settings = settings_from(config)
    try:
        check_runtime(settings)
    except ConfigError as exc:
        fail(str(exc))
    typer.echo(f"ok: {len(settings.listeners)} listeners, data in {settings.server.data_dir}")


@domain_app.command("add")
def domain_add(name: str, config: ConfigOption = None) -> None:
    """Add a local domain."""
    directory = open_directory(config)
    try:
        typer.echo(f"added domain {directory.add_domain(name)}")
    except DirectoryError as exc:
        fail(str(exc))


@domain_app.command("list")
def domain_list(config: ConfigOption = None) -> None:
    """List local domains."""
    for name in open_directory(config).list_domains():
        typer.echo(name)


@domain_app.command("remove")
def domain_remove(name: str, config: ConfigOption = None) -> None:
    """Remove a domain that has no accounts or aliases."""
    try:
        open_directory(config).remove_domain(name)
    except DirectoryError as exc:
        fail(str(exc))
    typer.echo(f"removed domain {name}")


@user_app.command("add")
def user_add(
    address: str,
    password_stdin: PasswordStdin = False,
    quota: Annotated[
        Optional[int],  # noqa: UP007
        typer.Option(help="Storage quota in bytes (default: none)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create an account with INBOX, Sent, Drafts, Trash, Junk and Archive."""
    settings = settings_from(config)
    open_directory(config).close()
    password = read_password(password_stdin)
    try:
        account = add_user(settings, address, password, quota)
    except DirectoryError as exc:
        fail(str(exc))
    typer.echo(f"added user {account.address}")


@user_app.command("list")
def user_list(
    domain: Annotated[Optional[str], typer.Option(help="Only this domain.")] = None,  # noqa: UP007
    config: ConfigOption = None,
) -> None:
    """List accounts."""
    try:
        accounts = open_directory(config).list_accounts(domain)
    except DirectoryError as exc:
        fail(str(exc))
    for account in accounts:
        quota = "none" if account.quota_bytes is None else str(account.quota_bytes)
        typer.echo(f"{account.address}\tquota={quota}")


@user_app.command("remove")
def user_remove(address: str, config: ConfigOption = None) -> None:
    """Delete an account with all its mail."""
    try:
        removed_aliases = open_directory(config).remove_account(address)
    except DirectoryError as exc:
        fail(str(exc))
    typer.echo(f"removed user {address}")
    for alias in removed_aliases:
        typer.echo(f"removed alias {alias} -> {address}")


@user_app.command("quota")
def user_quota(
    address: str,
    limit: Annotated[
        str, typer.Argument(help="Storage quota in bytes, or 'none' for no limit.")
    ],
    config: ConfigOption = None,
) -> None:
    """Set an account's storage quota."""
    if limit.lower() == "none":
        quota_bytes = None
    elif limit.isdigit():
        quota_bytes = int(limit)
    else:
        fail(f"invalid quota {limit!r}; give a number of bytes or 'none'")
    try:
        account = open_directory(config).set_quota(address, quota_bytes)
    except DirectoryError as exc:
        fail(str(exc))
    shown = "none" if account.quota_bytes is None else f"{account.quota_bytes} bytes"
    typer.echo(f"quota of {account.address} set to {shown}")


@user_app.command("passwd")
def user_passwd(
    address: str, password_stdin: PasswordStdin = False, config: ConfigOption = None
) -> None:
    """Set an account's password."""
    directory = open_directory(config)
    if directory.get_account(address) is None:
        fail(f"user {address} not found; see 'garrison user list'")
    password = read_password(password_stdin)
    try:
        directory.set_password(address, password)
    except DirectoryError as exc:
        fail(str(exc))
    typer.echo(f"password changed for {address}")


@alias_app.command("add")
def alias_add(address: str, target: str, config: ConfigOption = None) -> None:
    """Deliver mail for ADDRESS to TARGET."""
    try:
        open_directory(config).add_alias(address, target)
    except DirectoryError as exc:
        fail(str(exc))
    typer.echo(f"added alias {address} -> {target}")


@alias_app.command("list")
def alias_list(
    domain: Annotated[Optional[str], typer.Option(help="Only this domain.")] = None,  # noqa: UP007
    config: ConfigOption = None,
) -> None:
    """List aliases."""
    try:
        aliases = open_directory(config).list_aliases(domain)
    except DirectoryError as exc:
        fail(str(exc))
    for address, target in aliases:
        typer.echo(f"{address}\t{target}")


@alias_app.command("remove")
def alias_remove(
    address: str,
    target: Annotated[Optional[str], typer.Argument()] = None,  # noqa: UP007
    config: ConfigOption = None,
) -> None:
    """Remove an alias (all its targets, or one)."""
    try:
        open_directory(config).remove_alias(address, target)
    except DirectoryError as exc:
        fail(str(exc))
    typer.echo(f"removed alias {address}")


def open_dkim_keys(config: Path | None) -> DKIMKeyStore:
    open_directory(config).close()
    return DKIMKeyStore(settings_from(config).db_path)


@dkim_app.command("generate")
def dkim_generate(
    domain: str,
    algorithm: Annotated[
        str, typer.Option(help="Key type: rsa (RSA-2048) or ed25519 (RFC 8463).")
    ] = "rsa",
    selector: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option(help="DNS selector (default: g and the year and month)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a signing key for a local domain and print its DNS TXT record."""
    try:
        info = open_dkim_keys(config).generate(domain, algorithm, selector)
    except DKIMKeyError as exc:
        fail(str(exc))
    typer.echo(f"created {info.algorithm} key {info.selector} for {info.domain}")
    typer.echo("publish this DNS record before sending signed mail:")
    typer.echo(zone_file_line(info.record_name, info.record_value))


@dkim_app.command("list")
def dkim_list(config: ConfigOption = None) -> None:
    """List signing keys with their DNS TXT records."""
    for info in open_dkim_keys(config).list():
        typer.echo(f"{info.domain}\t{info.selector}\t{info.algorithm}")
        typer.echo(f"  {zone_file_line(info.record_name, info.record_value)}")


@dkim_app.command("remove")
def dkim_remove(domain: str, config: ConfigOption = None) -> None:
    """Delete a domain's signing key; its mail is sent unsigned afterwards."""
    try:
        open_dkim_keys(config).remove(domain)
    except DKIMKeyError as exc:
        fail(str(exc))
    typer.echo(f"removed DKIM key of {domain}")


def main() -> None:
    from garrison.cli.ban import ban_app
    from garrison.cli.policy import policy_app
    from garrison.cli.quarantine import quarantine_app
    from garrison.cli.queue import queue_app
    from garrison.cli.spam import spam_app

    app.add_typer(queue_app, name="queue")
    app.add_typer(ban_app, name="ban")
    app.add_typer(policy_app, name="policy")
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(spam_app, name="spam")
    app(prog_name="garrison")
