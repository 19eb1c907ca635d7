"""STARTTLS (RFC 3207), including the command injection attack."""

from __future__ import annotations

from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, inbox_messages, split_trace


async def test_starttls_then_deliver(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.starttls(garrison_server.tls_client_context())
        # RFC 3207 §4.2: the EHLO state is forgotten after the handshake.
        await smtp.command("MAIL FROM:<s@example.org>", 503, "5.5.1")
        reply = await smtp.command("EHLO client.example", 250)
        assert "STARTTLS" not in reply.lines
        assert "CHUNKING" in reply.lines
        await smtp.command("STARTTLS", 503, "5.5.1")
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: tls\r\n\r\nsecret\r\n.\r\n")
        await smtp.expect(250)

    trace, body = split_trace(inbox_messages(garrison_server)[0])
    assert body == b"Subject: tls\r\n\r\nsecret\r\n"
    received = trace[1].decode()
    assert " with ESMTPS (using TLSv1." in received
    assert " with cipher " in received


async def test_starttls_injection_discarded(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.send(b"STARTTLS\r\nEHLO evil\r\n")
        await smtp.expect(554, "5.5.1")
        await smtp.expect_closed()


async def test_starttls_injection_of_transaction_delivers_nothing(
    garrison_server,
) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.send(
            b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n"
            + f"RCPT TO:<{ALICE}>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n".encode()
        )
        await smtp.expect(554, "5.5.1")
        await smtp.expect_closed()
    assert inbox_messages(garrison_server) == []


async def test_starttls_with_argument(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("STARTTLS now", 501, "5.5.4")


async def test_starttls_inside_transaction(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        await smtp.command("STARTTLS", 503, "5.5.1")


async def test_starttls_failed_handshake_closes(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("STARTTLS", 220, "2.0.0")
        await smtp.send(b"this is not a TLS ClientHello\r\n")
        await smtp.expect_closed()
