"""Quarantine of infected mail: real SMTP, a private clamd and the CLI.

The CLI runs in a worker thread, because it starts its own event loop and
opens its own store on the same database, as it does beside a running server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from typer.testing import CliRunner, Result

from garrison.cli.quarantine import quarantine_app
from garrison.config import Settings
from garrison.config.schema import AntivirusSettings
from garrison.server.runner import Runner
from tests.conftest import RunningServer
from tests.filters.conftest import EICAR, EICAR_SIGNATURE, Clamd
from tests.filters.test_antivirus_smtp import attachment_message, send_message
from tests.smtpd.helpers import ALICE, inbox_messages


@pytest.fixture
async def quarantine_server(
    settings: Settings, clamd: Clamd
) -> AsyncIterator[RunningServer]:
    """Run the server with `on_infected = "quarantine"` against the private clamd."""
    antivirus = AntivirusSettings(
        enabled=True, timeout=10, clamd=clamd.address, on_infected="quarantine"
    )
    runner = Runner(settings.model_copy(update={"antivirus": antivirus}))
    await runner.start()
    try:
        yield RunningServer(runner, settings)
    finally:
        await runner.stop()


async def run_cli(settings: Settings, *args: str) -> Result:
    config = str(settings.server.data_dir / "garrison.toml")
    return await asyncio.to_thread(
        CliRunner().invoke, quarantine_app, [*args, "-c", config]
    )


def listed_ids(result: Result) -> list[str]:
    """Return the quarantine ids from `quarantine list` output."""
    return [line.split("\t")[0] for line in result.stdout.splitlines() if "\t" in line]


def infected_message() -> bytes:
    return attachment_message("eicar.com", EICAR, "application/octet-stream")


async def test_infected_message_quarantined(settings, quarantine_server) -> None:
    reply = await send_message(quarantine_server, infected_message())
    assert reply.code == 250
    assert inbox_messages(quarantine_server, ALICE) == []

    listed = await run_cli(settings, "list")
    assert listed.exit_code == 0, listed.stderr
    assert len(listed_ids(listed)) == 1
    assert f"reason={EICAR_SIGNATURE}" in listed.stdout
    assert "<sender@example.org>" in listed.stdout
    assert "1 messages in the quarantine" in listed.stdout

    shown = await run_cli(settings, "show", listed_ids(listed)[0])
    assert shown.exit_code == 0, shown.stderr
    assert "sender: <sender@example.org>" in shown.stdout
    assert f"recipient <{ALICE}> local" in shown.stdout
    assert f"reason: {EICAR_SIGNATURE}" in shown.stdout


async def test_release_delivers_exactly_once(settings, quarantine_server) -> None:
    message = infected_message()
    reply = await send_message(quarantine_server, message)
    assert reply.code == 250
    quarantine_id = listed_ids(await run_cli(settings, "list"))[0]

    released = await run_cli(settings, "release", quarantine_id)
    assert released.exit_code == 0, released.stderr
    assert f"released {quarantine_id}: delivered to 1 mailboxes" in released.stdout
    inbox = inbox_messages(quarantine_server, ALICE)
    assert len(inbox) == 1
    assert inbox[0].endswith(message)

    again = await run_cli(settings, "release", quarantine_id)
    assert again.exit_code == 1
    assert again.stderr == (
        f"garrison: error: quarantine id {quarantine_id} not found;"
        " see 'garrison quarantine list'\n"
    )
    assert len(inbox_messages(quarantine_server, ALICE)) == 1
    assert listed_ids(await run_cli(settings, "list")) == []


async def test_delete_removes_one(settings, quarantine_server) -> None:
    for _ in range(2):
        reply = await send_message(quarantine_server, infected_message())
        assert reply.code == 250
    first, second = listed_ids(await run_cli(settings, "list"))

    deleted = await run_cli(settings, "delete", first)
    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.stdout == f"deleted {first}\n"
    assert listed_ids(await run_cli(settings, "list")) == [second]
    assert inbox_messages(quarantine_server, ALICE) == []

    missing = await run_cli(settings, "show", first)
    assert missing.exit_code == 1
    assert "not found" in missing.stderr


async def test_clean_message_not_quarantined(settings, quarantine_server) -> None:
    clean = b"From: sender@example.org\r\nSubject: clean\r\n\r\nHello.\r\n"
    reply = await send_message(quarantine_server, clean)
    assert reply.code == 250
    assert len(inbox_messages(quarantine_server, ALICE)) == 1
    assert listed_ids(await run_cli(settings, "list")) == []
