"""Graceful shutdown: 421 for idle sessions, a grace period for DATA."""

from __future__ import annotations

import asyncio

from garrison.smtpd import SMTPServer
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, inbox_messages


def smtp_protocol(garrison_server) -> SMTPServer:
    for listener, _, protocol in garrison_server.runner.servers:
        if listener.name == "smtp":
            return protocol
    raise AssertionError("no smtp listener")


async def test_shutdown_idle_session_gets_421(garrison_server) -> None:
    server = smtp_protocol(garrison_server)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        shutdown = asyncio.create_task(server.shutdown())
        await smtp.expect(421, "4.3.2")
        await smtp.expect_closed()
        await asyncio.wait_for(shutdown, 5)


async def test_shutdown_lets_data_finish_within_grace(
    garrison_server, monkeypatch
) -> None:
    server = smtp_protocol(garrison_server)
    monkeypatch.setattr(server, "shutdown_grace", 5.0)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: late\r\n\r\nfirst half\r\n")
        await asyncio.sleep(0.1)
        shutdown = asyncio.create_task(server.shutdown())
        await asyncio.sleep(0.3)
        assert not shutdown.done()
        await smtp.send(b"second half\r\n.\r\n")
        await smtp.expect(250, "2.0.0")
        await smtp.expect(421, "4.3.2")
        await smtp.expect_closed()
        await asyncio.wait_for(shutdown, 5)
    assert len(inbox_messages(garrison_server)) == 1


async def test_shutdown_aborts_data_after_grace(garrison_server, monkeypatch) -> None:
    server = smtp_protocol(garrison_server)
    monkeypatch.setattr(server, "shutdown_grace", 0.5)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: never finished\r\n\r\n")
        await asyncio.sleep(0.1)
        shutdown = asyncio.create_task(server.shutdown())
        await smtp.expect(421, "4.3.2")
        await smtp.expect_closed()
        await asyncio.wait_for(shutdown, 5)
    assert inbox_messages(garrison_server) == []
    assert list(garrison_server.settings.spool_dir.glob("*.tmp")) == []


async def test_connection_after_shutdown_gets_421(garrison_server) -> None:
    server = smtp_protocol(garrison_server)
    await server.shutdown()
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(421, "4.3.2")
        await smtp.expect_closed()


async def test_shutdown_lets_bdat_finish_within_grace(
    garrison_server, monkeypatch
) -> None:
    server = smtp_protocol(garrison_server)
    monkeypatch.setattr(server, "shutdown_grace", 5.0)
    first = b"Subject: chunked\r\n\r\n"
    last = b"second chunk\r\n"
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.send(b"BDAT %d\r\n" % len(first) + first)
        await smtp.expect(250)
        shutdown = asyncio.create_task(server.shutdown())
        await asyncio.sleep(0.3)
        assert not shutdown.done()
        await smtp.send(b"BDAT %d LAST\r\n" % len(last) + last)
        await smtp.expect(250, "2.0.0")
        await smtp.expect(421, "4.3.2")
        await smtp.expect_closed()
        await asyncio.wait_for(shutdown, 5)
    assert len(inbox_messages(garrison_server)) == 1
