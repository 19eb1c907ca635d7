"""Hourly message and recipient limits per account, shared by all workers."""

from __future__ import annotations

import logging
import time

from garrison.config.schema import SubmissionSettings
from garrison.server.runner import Runner
from tests.conftest import ALICE, BOB, RunningServer
from tests.smtpd.helpers import inbox_messages
from tests.submission.conftest import logged_in, send_message

MESSAGE = b"From: alice@example.test\r\nSubject: limit\r\n\r\nbody\r\n"


async def test_message_limit(start_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    server = await start_server(submission=SubmissionSettings(max_messages_per_hour=2))
    async with logged_in(server) as smtp:
        for _ in range(2):
            assert (await send_message(smtp, ALICE, [BOB], MESSAGE)).code == 250
        reply = await send_message(smtp, ALICE, [BOB], MESSAGE)
        assert (reply.code, reply.enhanced) == (450, "4.7.1")
        assert "limit of 2 messages" in reply.text
    assert len(inbox_messages(server, BOB)) == 2
    rejects = [
        record
        for record in caplog.records
        if "event=reject" in record.getMessage() and "code=450" in record.getMessage()
    ]
    assert len(rejects) == 1

    # Another account has its own count.
    async with logged_in(server, user=BOB) as smtp:
        assert (await send_message(smtp, BOB, [ALICE], MESSAGE)).code == 250


async def test_recipient_limit(start_server) -> None:
    server = await start_server(
        submission=SubmissionSettings(max_recipients_per_hour=3)
    )
    async with logged_in(server) as smtp:
        assert (await send_message(smtp, ALICE, [BOB, ALICE], MESSAGE)).code == 250
        reply = await send_message(smtp, ALICE, [BOB, ALICE], MESSAGE)
        assert (reply.code, reply.enhanced) == (452, "4.7.1")
        await smtp.command("RSET", 250)
        # One recipient is still within the limit of three.
        assert (await send_message(smtp, ALICE, [BOB], MESSAGE)).code == 250
        reply = await send_message(smtp, ALICE, [BOB], MESSAGE)
        assert (reply.code, reply.enhanced) == (452, "4.7.1")


async def test_limit_counts_other_worker(start_server) -> None:
    server = await start_server(submission=SubmissionSettings(max_messages_per_hour=2))
    # A second runner on the same data directory works like another worker
    # process: its own store writer and database connections.
    other = Runner(server.settings)
    await other.start()
    try:
        second = RunningServer(other, server.settings)
        async with logged_in(server) as smtp:
            assert (await send_message(smtp, ALICE, [BOB], MESSAGE)).code == 250
        async with logged_in(second) as smtp:
            assert (await send_message(smtp, ALICE, [BOB], MESSAGE)).code == 250
            reply = await send_message(smtp, ALICE, [BOB], MESSAGE)
            assert (reply.code, reply.enhanced) == (450, "4.7.1")
    finally:
        await other.stop()


async def test_old_entries_leave_the_window(start_server) -> None:
    server = await start_server(submission=SubmissionSettings(max_messages_per_hour=1))
    account = server.directory.get_account(ALICE)
    assert account is not None
    sending = server.runner.servers[0][2].sending
    await sending.record(account.id, 1, now=time.time() - 3601)
    assert sending.counts(account.id).messages == 0
    async with logged_in(server) as smtp:
        assert (await send_message(smtp, ALICE, [BOB], MESSAGE)).code == 250
        reply = await send_message(smtp, ALICE, [BOB], MESSAGE)
        assert reply.code == 450
