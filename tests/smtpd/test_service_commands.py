"""RSET, NOOP, VRFY, HELP and QUIT."""

from __future__ import annotations

from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE


async def test_service_commands(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("NOOP", 250, "2.0.0")
        await smtp.command("NOOP any argument", 250, "2.0.0")
        await smtp.command(f"VRFY {ALICE}", 252, "2.5.0")
        # 252 does not reveal whether the address exists.
        await smtp.command("VRFY nobody@example.test", 252, "2.5.0")
        await smtp.command("VRFY", 501, "5.5.4")
        reply = await smtp.command("HELP", 214, "2.0.0")
        assert "EHLO" in reply.text
        await smtp.command("HELP MAIL", 214)


async def test_rset_drops_transaction(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<s@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("RSET", 250, "2.0.0")
        await smtp.command("DATA", 503, "5.5.1")
        await smtp.command("RSET extra", 501, "5.5.4")
        # EHLO state survives RSET.
        await smtp.command("MAIL FROM:<s@example.org>", 250)


async def test_rset_before_ehlo_allowed(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("RSET", 250)
        await smtp.command("NOOP", 250)
        await smtp.command("QUIT", 221, "2.0.0")
        await smtp.expect_closed()


async def test_nul_byte_rejected(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command(b"NOOP\x00", 501, "5.5.4")
        await smtp.command("NOOP", 250)
