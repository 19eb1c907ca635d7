"""DATA: storage round trip, trace headers, limits, bare CR/LF and smuggling."""

from __future__ import annotations

import re

import pytest

from garrison.smtp.data import dot_stuff
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, BOB, inbox_messages, split_trace

MESSAGE = (
    b"From: sender@example.org\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: dot test\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"middle . dot\r\n"
    b"last line\r\n"
)


async def open_transaction(
    smtp: Dialogue, recipients: tuple[str, ...] = (ALICE,)
) -> None:
    await smtp.hello()
    await smtp.command("MAIL FROM:<sender@example.org>", 250)
    for recipient in recipients:
        await smtp.command(f"RCPT TO:<{recipient}>", 250)


async def test_data_round_trip_with_dot_stuffing(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(dot_stuff(MESSAGE))
        reply = await smtp.expect(250, "2.0.0")
        queue_id = re.search(r"queued as (\S+)", reply.text).group(1)

    stored = inbox_messages(garrison_server)
    assert len(stored) == 1
    trace, body = split_trace(stored[0])
    assert body == MESSAGE
    assert trace[0] == b"Return-Path: <sender@example.org>"
    received = trace[1].decode()
    assert received.startswith("Received: from client.example ([127.0.0.1])")
    assert f"by {garrison_server.settings.server.hostname} with ESMTP " in received
    assert f"id {queue_id}" in received
    assert f"for <{ALICE}>;" in received
    assert re.search(r"; \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$", received)


async def test_data_several_recipients_omit_for_clause(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp, (ALICE, BOB))
        await smtp.command("DATA", 354)
        await smtp.send(dot_stuff(MESSAGE))
        await smtp.expect(250)

    for address in (ALICE, BOB):
        stored = inbox_messages(garrison_server, address)
        assert len(stored) == 1
        trace, body = split_trace(stored[0])
        assert body == MESSAGE
        assert b" for <" not in trace[1]


async def test_data_empty_message(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.command(".", 250)
    # A message without From, To, Subject, Date and Message-ID reaches the
    # anti-spam junk score on those rules alone, so it is filed into Junk.
    account = garrison_server.directory.get_account(ALICE)
    junk = garrison_server.store.get_mailbox(account.id, "Junk")
    [record] = garrison_server.store.messages(junk.id)
    trace, body = split_trace(garrison_server.store.blobs.read(record.blob_id))
    assert body == b""


async def test_data_without_recipients(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("DATA", 503, "5.5.1")
        await smtp.command("MAIL FROM:<a@example.org>", 250)
        await smtp.command("DATA", 503, "5.5.1")
        await smtp.command("DATA extra", 503, "5.5.1")


async def test_data_several_messages_in_one_session(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        for number in range(3):
            await smtp.command("MAIL FROM:<a@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command("DATA", 354)
            await smtp.send(f"Subject: {number}\r\n\r\nbody\r\n.\r\n")
            await smtp.expect(250)
    bodies = [split_trace(message)[1] for message in inbox_messages(garrison_server)]
    assert bodies == [f"Subject: {n}\r\n\r\nbody\r\n".encode() for n in range(3)]


async def test_data_line_length_limit(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_line_length
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: ok\r\n\r\n" + b"x" * (limit - 2) + b"\r\n.\r\n")
        await smtp.expect(250)

        await smtp.command("MAIL FROM:<a@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(
            b"Subject: long\r\n\r\n" + b"x" * (limit - 1) + b"\r\nmore\r\n.\r\n"
        )
        await smtp.expect(500, "5.5.2")
        # The session is still in step: the transaction was reset.
        await smtp.command("RCPT TO:<alice@example.test>", 503)
        await smtp.command("NOOP", 250)
    assert len(inbox_messages(garrison_server)) == 1


async def test_data_size_limit_drains_and_rejects(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_message_size
    line = b"y" * 998 + b"\r\n"
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        chunk = line * 1024
        sent = 0
        while sent <= limit:
            await smtp.send(chunk)
            sent += len(chunk)
        await smtp.send(b".\r\n")
        await smtp.expect(552, "5.3.4", timeout=60)
        await smtp.command("NOOP", 250)
    assert inbox_messages(garrison_server) == []
    assert list(garrison_server.settings.spool_dir.glob("*.tmp")) == []


@pytest.mark.parametrize(
    "content",
    [
        b"Subject: x\r\n\r\nbare LF\nhere\r\n",
        b"Subject: x\r\n\r\nbare CR\rhere\r\n",
        b"Subject: x\n\r\nbody\r\n",
    ],
    ids=["bare LF in body", "bare CR in body", "bare LF in header"],
)
async def test_data_bare_line_ending_rejected(garrison_server, content: bytes) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(content + b".\r\n")
        await smtp.expect(554, "5.6.0")
        await smtp.command("NOOP", 250)
    assert inbox_messages(garrison_server) == []


SMUGGLING_ENDINGS = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
}


@pytest.mark.parametrize(
    "ending", SMUGGLING_ENDINGS.values(), ids=SMUGGLING_ENDINGS.keys()
)
async def test_data_smuggling_variant_rejected(garrison_server, ending: bytes) -> None:
    smuggled = (
        b"Subject: first\r\n\r\nhello"
        + ending
        + b"MAIL FROM:<admin@example.test>\r\n"
        + f"RCPT TO:<{BOB}>\r\n".encode()
        + b"DATA\r\n"
        + b"Subject: smuggled\r\n\r\nforged\r\n"
    )
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(smuggled + b".\r\n")
        # Exactly one reply for the whole stream: the smuggled commands were
        # read as message content, and the message was rejected.
        await smtp.expect(554, "5.6.0")
        await smtp.command("NOOP", 250)
    assert inbox_messages(garrison_server) == []
    assert inbox_messages(garrison_server, BOB) == []


async def test_data_commands_pipelined_after_end(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: x\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        await smtp.expect(250, "2.0.0")
        await smtp.expect(250, "2.0.0")
        await smtp.expect(221)
    assert len(inbox_messages(garrison_server)) == 1


async def test_data_timeout_closes_and_discards(garrison_server, monkeypatch) -> None:
    server = next(
        protocol
        for listener, _, protocol in garrison_server.runner.servers
        if listener.name == "smtp"
    )
    smtp_settings = server.settings.smtp.model_copy(update={"data_timeout": 0.5})
    monkeypatch.setattr(
        server, "settings", server.settings.model_copy(update={"smtp": smtp_settings})
    )
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: x\r\n\r\npartial")
        await smtp.expect(421, "4.4.2")
        await smtp.expect_closed()
    assert inbox_messages(garrison_server) == []
    assert list(garrison_server.settings.spool_dir.glob("*.tmp")) == []
