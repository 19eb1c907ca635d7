"""`garrison quarantine list|show|release|delete`: messages kept out of mailboxes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

from garrison.cli.common import ConfigOption, existing_setup, fail
from garrison.governance import Quarantine, QuarantinedMessage, QuarantineNotFound
from garrison.queue.admin import describe_time
from garrison.store import MailStore

quarantine_app = typer.Typer(
    no_args_is_help=True, help="Inspect, release and delete quarantined messages."
)

T = TypeVar("T")


def _run(config: Path | None, action: Callable[[Quarantine], Awaitable[T]]) -> T:
    """Open the store, run `action` on the quarantine, and close both."""
    settings = existing_setup(config)

    async def main() -> T:
        store = MailStore(settings)
        quarantine = Quarantine(store)
        try:
            return await action(quarantine)
        finally:
            quarantine.close()
            store.close()

    try:
        return asyncio.run(main())
    except QuarantineNotFound as exc:
        fail(str(exc))


async def _list(quarantine: Quarantine) -> list[QuarantinedMessage]:
    return quarantine.list()


@quarantine_app.command("list")
def quarantine_list(config: ConfigOption = None) -> None:
    """List quarantined messages: id, arrival, size, sender, recipients, reason."""
    messages = _run(config, _list)
    for message in messages:
        typer.echo(
            f"{message.id}\t{describe_time(message.created_at)}\t{message.size}"
            f"\t<{message.sender}>\trecipients={len(message.recipients)}"
            f"\treason={message.reason}"
        )
    typer.echo(f"{len(messages)} messages in the quarantine")


@quarantine_app.command("show")
def quarantine_show(quarantine_id: int, config: ConfigOption = None) -> None:
    """Show one quarantined message's envelope and reason."""

    async def get(quarantine: Quarantine) -> QuarantinedMessage:
        return quarantine.get(quarantine_id)

    message = _run(config, get)
    typer.echo(f"quarantine id: {message.id}")
    typer.echo(f"queue id: {message.queue_id}")
    typer.echo(f"sender: <{message.sender}>")
    typer.echo(f"arrived: {describe_time(message.created_at)}")
    typer.echo(f"size: {message.size}")
    typer.echo(f"reason: {message.reason}")
    for name, value in sorted(message.params.items()):
        typer.echo(f"mail parameter: {name}={value}")
    for recipient in message.recipients:
        kind = "local" if recipient.account_ids else "remote"
        typer.echo(f"recipient <{recipient.address}> {kind}")


@quarantine_app.command("release")
def quarantine_release(quarantine_id: int, config: ConfigOption = None) -> None:
    """Deliver the message to its original recipients and remove it."""

    async def release(quarantine: Quarantine) -> None:
        result = await quarantine.release(quarantine_id)
        summary = f"released {quarantine_id}: delivered to {len(result.uids)} mailboxes"
        if result.outbound_queue_id:
            summary += f", queued as {result.outbound_queue_id}"
        typer.echo(summary)

    _run(config, release)


@quarantine_app.command("delete")
def quarantine_delete(quarantine_id: int, config: ConfigOption = None) -> None:
    """Remove the message from the quarantine without delivering it."""

    async def delete(quarantine: Quarantine) -> None:
        await quarantine.delete(quarantine_id)

    _run(config, delete)
    typer.echo(f"deleted {quarantine_id}")
