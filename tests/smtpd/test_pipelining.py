"""PIPELINING (RFC 2920): ordered replies, batched writes."""

from __future__ import annotations

from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, BOB, inbox_messages, split_trace


async def test_pipelined_envelope_replies_in_order(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.send(
            "MAIL FROM:<s@example.org>\r\n"
            f"RCPT TO:<{ALICE}>\r\n"
            "RCPT TO:<nobody@example.test>\r\n"
            f"RCPT TO:<{BOB}>\r\n"
            "RCPT TO:<x@elsewhere.example>\r\n"
            "DATA\r\n"
        )
        await smtp.expect(250, "2.1.0")
        await smtp.expect(250, "2.1.5")
        await smtp.expect(550, "5.1.1")
        await smtp.expect(250, "2.1.5")
        await smtp.expect(554, "5.7.1")
        await smtp.expect(354)
        await smtp.send(b"Subject: p\r\n\r\nx\r\n.\r\n")
        await smtp.expect(250)
    assert len(inbox_messages(garrison_server, ALICE)) == 1
    assert len(inbox_messages(garrison_server, BOB)) == 1


async def test_pipelined_group_answered_in_one_write(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.send(
            f"RSET\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n"
        )
        # The four replies arrive together, so one read returns all of them.
        data = b""
        while data.count(b"\r\n") < 4:
            data += await smtp.reader.read(4096)
        assert data.split(b"\r\n")[:4] == [
            b"250 2.0.0 Reset ok",
            b"250 2.1.0 Sender ok",
            b"250 2.1.5 Recipient ok",
            b"354 End data with <CR><LF>.<CR><LF>",
        ]


async def test_whole_transaction_in_one_packet(garrison_server) -> None:
    message = b"Subject: one packet\r\n\r\nbody\r\n"
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.send(
            b"EHLO c.example\r\nMAIL FROM:<s@example.org>\r\n"
            + f"RCPT TO:<{ALICE}>\r\nDATA\r\n".encode()
            + message
            + b".\r\nQUIT\r\n"
        )
        await smtp.expect(250)
        await smtp.expect(250, "2.1.0")
        await smtp.expect(250, "2.1.5")
        await smtp.expect(354)
        await smtp.expect(250, "2.0.0")
        await smtp.expect(221)
    assert split_trace(inbox_messages(garrison_server)[0])[1] == message
