"""Greeting, EHLO and HELO."""

from __future__ import annotations

from tests.smtpd.dialogue import Dialogue


async def test_greeting_names_host(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        reply = await smtp.expect(220)
        assert reply.lines[0].startswith(garrison_server.settings.server.hostname)


async def test_ehlo_lists_extensions(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        reply = await smtp.hello()
        keywords = [line.split(" ")[0] for line in reply.lines[1:]]
        assert keywords == [
            "PIPELINING",
            "SIZE",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "STARTTLS",
            "CHUNKING",
            "DSN",
        ]
        size_line = reply.lines[2]
        assert size_line == f"SIZE {garrison_server.settings.smtp.max_message_size}"


async def test_ehlo_does_not_offer_binarymime(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        reply = await smtp.hello()
        assert "BINARYMIME" not in reply.lines


async def test_helo_single_line(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        reply = await smtp.command("HELO client.example", 250)
        assert len(reply.lines) == 1


async def test_helo_rejects_esmtp_parameters(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("HELO client.example", 250)
        await smtp.command("MAIL FROM:<a@example.org> SIZE=10", 555, "5.5.4")
        await smtp.command("MAIL FROM:<a@example.org>", 250, "2.1.0")


async def test_ehlo_argument_required(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("EHLO", 501, "5.5.4")
        await smtp.command("EHLO bad(name", 501, "5.5.4")
        await smtp.command("EHLO [127.0.0.1]", 250)


async def test_mail_before_ehlo_is_bad_sequence(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("MAIL FROM:<a@example.org>", 503, "5.5.1")


async def test_ehlo_resets_transaction(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<a@example.org>", 250)
        await smtp.command("EHLO again.example", 250)
        await smtp.command("RCPT TO:<alice@example.test>", 503, "5.5.1")
        await smtp.command("MAIL FROM:<a@example.org>", 250)


async def test_unknown_command(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("FOO bar", 500, "5.5.1")
        await smtp.command("EXPN staff", 500, "5.5.1")


async def test_commands_case_insensitive(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("ehlo client.example", 250)
        await smtp.command("mail from:<a@example.org>", 250)
        await smtp.command("rcpt to:<ALICE@EXAMPLE.TEST>", 250)


async def test_command_line_too_long(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_command_line_length
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("NOOP " + "x" * limit, 500, "5.5.2")
        await smtp.command("NOOP", 250)


async def test_too_many_errors_closes(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_errors
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        for _ in range(limit - 1):
            await smtp.command("BOGUS", 500)
        await smtp.send("BOGUS\r\n")
        await smtp.expect(500)
        await smtp.expect(421, "4.7.0")
        await smtp.expect_closed()


async def test_quit_closes(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("QUIT", 221, "2.0.0")
        await smtp.expect_closed()
