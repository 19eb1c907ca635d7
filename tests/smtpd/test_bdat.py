"""BDAT (RFC 3030 CHUNKING)."""

from __future__ import annotations

from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, inbox_messages, split_trace

MESSAGE = b"Subject: chunks\r\n\r\n.a line with a dot stays\r\nend\r\n"


async def open_transaction(smtp: Dialogue) -> None:
    await smtp.hello()
    await smtp.command("MAIL FROM:<sender@example.org>", 250)
    await smtp.command(f"RCPT TO:<{ALICE}>", 250)


async def test_bdat_chunks_stored_verbatim(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        first, second = MESSAGE[:10], MESSAGE[10:]
        await smtp.send(f"BDAT {len(first)}\r\n".encode() + first)
        reply = await smtp.expect(250, "2.0.0")
        assert "10 octets" in reply.text
        await smtp.send(f"BDAT {len(second)} LAST\r\n".encode() + second)
        reply = await smtp.expect(250, "2.0.0")
        assert "queued as" in reply.text

    trace, body = split_trace(inbox_messages(garrison_server)[0])
    assert body == MESSAGE


async def test_bdat_pipelined_chunks(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.send(
            b"MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
            + f"BDAT {len(MESSAGE)}\r\n".encode()
            + MESSAGE
            + b"BDAT 0 LAST\r\n"
        )
        await smtp.expect(250, "2.1.0")
        await smtp.expect(250, "2.1.5")
        await smtp.expect(250, "2.0.0")
        await smtp.expect(250, "2.0.0")
    assert split_trace(inbox_messages(garrison_server)[0])[1] == MESSAGE


async def test_bdat_final_line_without_crlf_accepted(garrison_server) -> None:
    content = b"Subject: x\r\n\r\nno newline at end"
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.send(f"BDAT {len(content)} LAST\r\n".encode() + content)
        await smtp.expect(250)
    assert split_trace(inbox_messages(garrison_server)[0])[1] == content


async def test_bdat_without_recipient_consumes_chunk(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        # The chunk looks like a command, but must be skipped as data.
        await smtp.send(b"BDAT 6 LAST\r\nQUIT\r\n")
        await smtp.expect(503, "5.5.1")
        await smtp.command("NOOP", 250)


async def test_bdat_bare_lf_rejected_and_later_chunks_fail(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.send(b"BDAT 8\r\nbad\nline")
        await smtp.expect(554, "5.6.0")
        await smtp.send(b"BDAT 4 LAST\r\nok\r\n")
        await smtp.expect(503, "5.5.1")
        await smtp.command("DATA", 503, "5.5.1")
        await smtp.command("RSET", 250)
        await smtp.command("MAIL FROM:<s@example.org>", 250)
    assert inbox_messages(garrison_server) == []
    assert list(garrison_server.settings.spool_dir.glob("*.tmp")) == []


async def test_bdat_size_limit_counts_all_chunks(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_message_size
    line = b"z" * 998 + b"\r\n"
    chunk = line * 4096
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        sent = 0
        failed = False
        while sent <= limit:
            await smtp.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
            sent += len(chunk)
            reply = await smtp.read_reply(timeout=60)
            if sent <= limit:
                assert reply.code == 250, reply
            else:
                assert (reply.code, reply.enhanced) == (552, "5.3.4")
                failed = True
        assert failed
        await smtp.send(b"BDAT 0 LAST\r\n")
        await smtp.expect(503, "5.5.1")
    assert inbox_messages(garrison_server) == []


async def test_bdat_malformed_size_closes_session(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("BDAT ten", 501, "5.5.4")
        await smtp.expect_closed()


async def test_bdat_last_line_too_long(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_line_length
    content = b"Subject: x\r\n\r\n" + b"w" * limit + b"\r\n"
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.send(f"BDAT {len(content)} LAST\r\n".encode() + content)
        await smtp.expect(500, "5.5.2")
        # A failed LAST chunk ends the transaction.
        await smtp.command("MAIL FROM:<s@example.org>", 250)
    assert inbox_messages(garrison_server) == []
