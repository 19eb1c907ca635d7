"""`garrison spam train|status|check`: the built-in anti-spam classifier."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli.common import ConfigOption, existing_setup, fail
from garrison.config.schema import SpamSettings
from garrison.db.engine import connect
from garrison.filters.spam.rules import auth_symbols
from garrison.filters.spam.scoring import Scorer
from garrison.filters.spam.tokens import (
    SERVER_SCOPE,
    Label,
    SqlTokenCounts,
    domain_scope,
    recipient_scopes,
    user_scope,
)
from garrison.filters.spam.training import message_files, read_message_file, train_files
from garrison.message.headers import HeaderField
from garrison.store import MailStore

spam_app = typer.Typer(
    no_args_is_help=True, help="Train and inspect the built-in anti-spam classifier."
)

ScopeOption = Annotated[
    str,
    typer.Option(
        "--scope",
        help="Token counts to train: server, domain:DOMAIN or user:ADDRESS.",
    ),
]


def parse_scope(value: str) -> str:
    """Return the stored scope name for server, domain:DOMAIN or user:ADDRESS."""
    kind, _, name = value.partition(":")
    if kind == "server" and not name:
        return SERVER_SCOPE
    if kind == "domain" and name and "@" not in name:
        return domain_scope(name)
    if kind == "user" and "@" in name:
        return user_scope(name)
    raise typer.BadParameter(
        f"invalid scope {value!r}; use server, domain:example.org or "
        "user:alice@example.org"
    )


@spam_app.command("train")
def spam_train(
    spam: Annotated[
        list[Path] | None,  # noqa: UP007 - typer needs Optional here
        typer.Option(
            "--spam", help="Directory of spam messages (searched recursively)."
        ),
    ] = None,
    ham: Annotated[
        list[Path] | None,  # noqa: UP007 - typer needs Optional here
        typer.Option("--ham", help="Directory of ham messages (searched recursively)."),
    ] = None,
    scope: ScopeOption = "server",
    config: ConfigOption = None,
) -> None:
    """Train messages from directories (Maildir or one message per file)."""
    scope_name = parse_scope(scope)
    if not spam and not ham:
        fail("nothing to train; give --spam DIR and/or --ham DIR")
    for directory in [*(spam or []), *(ham or [])]:
        if not directory.is_dir():
            fail(f"{directory} is not a directory")
    settings = existing_setup(config)

    async def main() -> None:
        store = MailStore(settings)
        try:
            jobs: tuple[tuple[Label, list[Path]], ...] = (
                ("spam", spam or []),
                ("ham", ham or []),
            )
            for label, directories in jobs:
                for directory in directories:
                    files, trained = await train_files(
                        store, message_files(directory), label, scope_name
                    )
                    typer.echo(
                        f"{directory}: {files} files, {trained} newly trained as "
                        f"{label} in {scope_name}"
                    )
        finally:
            store.close()

    asyncio.run(main())


@spam_app.command("status")
def spam_status(config: ConfigOption = None) -> None:
    """Show the trained spam and ham messages and token rows of every scope."""
    settings = existing_setup(config)
    counts = SqlTokenCounts(connect(settings.db_path, readonly=True))
    try:
        rows = counts.all_scopes()
    finally:
        counts.conn.close()
    minimum = settings.spam.min_trained
    typer.echo("scope\tspam\tham\ttokens\tclassifying")
    for scope, spam, ham, tokens in rows:
        ready = "yes" if spam >= minimum and ham >= minimum else "no"
        typer.echo(f"{scope}\t{spam}\t{ham}\t{tokens}\t{ready}")
    typer.echo(
        f"{len(rows)} scopes; a scope classifies from {minimum} spam and "
        f"{minimum} ham messages"
    )


@spam_app.command("check")
def spam_check(
    file: Annotated[Path, typer.Argument(help="The message file to score.")],
    recipient: Annotated[
        str | None,  # noqa: UP007 - typer needs Optional here
        typer.Option(
            "--recipient",
            help="Score for this local address (its user and domain counts too); "
            "default: the server counts only.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print the score and the symbols of a message, as the server computes them.

    The SPF, DKIM and DMARC symbols come from Authentication-Results fields
    in the file; DNS list symbols are not looked up.
    """
    settings = existing_setup(config)
    if not file.is_file():
        fail(f"{file} is not a file")
    data = read_message_file(file, settings.spam.max_scan_size)
    scorer = Scorer(settings.spam)
    analysis = scorer.analyse(data, datetime.now(UTC))
    symbols = dict(analysis.symbols)
    resinfo = _authentication_results(
        analysis.content.headers("authentication-results")
    )
    symbols.update(scorer.rescore(auth_symbols({"file": resinfo})))
    scopes = [SERVER_SCOPE]
    if recipient is not None:
        if "@" not in recipient:
            fail(
                f"invalid recipient {recipient!r}; "
                "give an address such as alice@example.org"
            )
        scopes = recipient_scopes(recipient, recipient.rpartition("@")[2])
    counts = SqlTokenCounts(connect(settings.db_path, readonly=True))
    try:
        bayes = scorer.bayes(counts, analysis, scopes)
    finally:
        counts.conn.close()
    if bayes is not None:
        symbols.update(bayes.symbols)
    score = sum(symbols.values())
    typer.echo(f"score: {score:.2f}")
    typer.echo(f"action: {_action(score, settings.spam)}")
    if bayes is None:
        typer.echo("classifier: not trained enough in " + ", ".join(scopes))
    else:
        typer.echo(
            f"classifier: probability {bayes.probability:.3f} from "
            + ", ".join(bayes.scopes)
        )
    typer.echo(f"tokens: {len(analysis.tokens)}")
    typer.echo(f"sha256: {hashlib.sha256(data).hexdigest()}")
    for name, value in sorted(symbols.items(), key=lambda item: -item[1]):
        typer.echo(f"{name}\t{value:.2f}")


def _authentication_results(fields: list[HeaderField]) -> list[str]:
    resinfo: list[str] = []
    for field in fields:
        value = field.value.decode("utf-8", "replace")
        resinfo += [part.strip() for part in value.split(";")[1:] if part.strip()]
    return resinfo


def _action(score: float, settings: SpamSettings) -> str:
    if score >= settings.reject_score:
        return "reject"
    if settings.quarantine_score and score >= settings.quarantine_score:
        return "quarantine"
    if score >= settings.junk_score:
        return "junk"
    return "accept"
