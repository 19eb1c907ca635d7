"""`garrison queue list|show|retry|hold|release|delete`: the outbound queue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from garrison.cli.common import ConfigOption, existing_setup, fail
from garrison.queue.admin import QueueAdmin, QueueAdminError, describe_time
from garrison.queue.records import QueuedMessage

queue_app = typer.Typer(
    no_args_is_help=True, help="Inspect and manage the outbound queue."
)


def _admin(config: Path | None) -> QueueAdmin:
    return QueueAdmin(existing_setup(config).db_path)


def _sender(message: QueuedMessage) -> str:
    return f"<{message.sender}>"


@queue_app.command("list")
def queue_list(config: ConfigOption = None) -> None:
    """List queued messages: queue id, arrival, size, sender, state, recipients left."""
    admin = _admin(config)
    try:
        messages = admin.list()
    finally:
        admin.close()
    for message in messages:
        pending = [r for r in message.recipients if r.status not in ("sent", "bounced")]
        state = (
            "held" if message.held else f"next={describe_time(message.next_attempt)}"
        )
        typer.echo(
            f"{message.queue_id}\t{describe_time(message.created_at)}\t{message.size}"
            f"\t{_sender(message)}\t{state}\trecipients={len(pending)}"
        )
    typer.echo(f"{len(messages)} messages in the queue")


@queue_app.command("show")
def queue_show(queue_id: str, config: ConfigOption = None) -> None:
    """Show one message's envelope and every recipient's state and last reply."""
    admin = _admin(config)
    try:
        message = admin.show(queue_id)
    except QueueAdminError as exc:
        _fail(exc)
    finally:
        admin.close()
    typer.echo(f"queue id: {message.queue_id}")
    typer.echo(f"sender: {_sender(message)}")
    typer.echo(f"arrived: {describe_time(message.created_at)}")
    typer.echo(f"size: {message.size}")
    typer.echo(f"held: {'yes' if message.held else 'no'}")
    if message.envid:
        typer.echo(f"envid: {message.envid}")
    if message.ret:
        typer.echo(f"ret: {message.ret}")
    for recipient in message.recipients:
        typer.echo(
            f"recipient <{recipient.address}> status={recipient.status}"
            f" attempts={recipient.attempts}"
            f" next={describe_time(recipient.next_attempt)}"
            f" relay={recipient.remote_host or '-'}"
            f" reply={recipient.last_reply or '-'}"
        )


def _fail(exc: Exception) -> None:

    fail(str(exc))


def _change(
    queue_id: str,
    config: Path | None,
    action: Callable[[QueueAdmin, str], None],
    verb: str,
) -> None:
    admin = _admin(config)
    try:
        action(admin, queue_id)
    except QueueAdminError as exc:
        _fail(exc)
    finally:
        admin.close()
    typer.echo(f"{verb} {queue_id}")


@queue_app.command("retry")
def queue_retry(queue_id: str, config: ConfigOption = None) -> None:
    """Make the message's queued recipients due now."""
    _change(queue_id, config, QueueAdmin.retry, "scheduled for retry:")


@queue_app.command("hold")
def queue_hold(queue_id: str, config: ConfigOption = None) -> None:
    """Keep the message queued without delivery attempts until released."""
    _change(queue_id, config, QueueAdmin.hold, "held")


@queue_app.command("release")
def queue_release(queue_id: str, config: ConfigOption = None) -> None:
    """End a hold; the message is due at once."""
    _change(queue_id, config, QueueAdmin.release, "released")


@queue_app.command("delete")
def queue_delete(queue_id: str, config: ConfigOption = None) -> None:
    """Remove the message from the queue without notifying the sender."""
    _change(queue_id, config, QueueAdmin.delete, "deleted")
