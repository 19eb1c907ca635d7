"""MAIL and RCPT: sender syntax, SIZE, BODY, SMTPUTF8, recipients, relay."""

from __future__ import annotations

import pytest

from tests.smtpd.dialogue import Dialogue


@pytest.fixture
async def smtp(garrison_server):
    async with Dialogue.connect(garrison_server.port("smtp")) as dialogue:
        await dialogue.hello()
        yield dialogue


async def test_mail_accepts_null_sender(smtp) -> None:
    await smtp.command("MAIL FROM:<>", 250, "2.1.0")


async def test_mail_bad_syntax(smtp) -> None:
    await smtp.command("MAIL FROM:alice@example.org", 501, "5.1.7")
    await smtp.command("MAIL TO:<alice@example.org>", 501, "5.5.4")
    await smtp.command("MAIL", 501, "5.5.4")


async def test_mail_twice_is_bad_sequence(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("MAIL FROM:<b@example.org>", 503, "5.5.1")


async def test_mail_size_over_limit(smtp, garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_message_size
    await smtp.command(f"MAIL FROM:<a@example.org> SIZE={limit + 1}", 552, "5.3.4")
    await smtp.command(f"MAIL FROM:<a@example.org> SIZE={limit}", 250)


async def test_mail_size_malformed(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org> SIZE=-1", 501, "5.5.4")
    await smtp.command("MAIL FROM:<a@example.org> SIZE", 501, "5.5.4")


@pytest.mark.parametrize("body", ["7BIT", "8BITMIME", "8bitmime"])
async def test_mail_body_values(smtp, body: str) -> None:
    await smtp.command(f"MAIL FROM:<a@example.org> BODY={body}", 250)


async def test_mail_body_binarymime_rejected(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org> BODY=BINARYMIME", 555, "5.6.3")
    await smtp.command("MAIL FROM:<a@example.org> BODY=QUANTUM", 501, "5.5.4")


async def test_mail_unknown_parameter(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org> XFOO=1", 555, "5.5.4")
    await smtp.command("MAIL FROM:<a@example.org> XFOO", 555, "5.5.4")


async def test_mail_utf8_needs_smtputf8(smtp) -> None:
    await smtp.command("MAIL FROM:<jörg@example.org>", 553, "5.6.7")
    await smtp.command("MAIL FROM:<jörg@example.org> SMTPUTF8", 250)


async def test_rcpt_before_mail(smtp) -> None:
    await smtp.command("RCPT TO:<alice@example.test>", 503, "5.5.1")


async def test_rcpt_local_user(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("RCPT TO:<alice@example.test>", 250, "2.1.5")
    await smtp.command("RCPT TO:<Bob@Example.Test>", 250, "2.1.5")


async def test_rcpt_unknown_user(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("RCPT TO:<nobody@example.test>", 550, "5.1.1")


async def test_rcpt_relay_denied(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("RCPT TO:<someone@elsewhere.example>", 554, "5.7.1")
    await smtp.command(
        "RCPT TO:<@example.test:someone@elsewhere.example>", 554, "5.7.1"
    )


async def test_rcpt_postmaster_without_domain(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("RCPT TO:<Postmaster>", 250, "2.1.5")
    await smtp.command("RCPT TO:<postmaster@example.test>", 250, "2.1.5")


async def test_rcpt_bad_syntax(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("RCPT TO:<alice@>", 501, "5.1.3")
    await smtp.command("RCPT TO:<alice@example.test> XFOO=1", 555, "5.5.4")


async def test_rcpt_utf8_needs_smtputf8_transaction(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command("RCPT TO:<jörg@example.test>", 553, "5.6.7")


async def test_too_many_recipients(garrison_server) -> None:
    limit = garrison_server.settings.smtp.max_recipients
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<a@example.org>", 250)
        lines = "".join("RCPT TO:<alice@example.test>\r\n" for _ in range(limit))
        await smtp.send(lines)
        for _ in range(limit):
            await smtp.expect(250, "2.1.5")
        await smtp.command("RCPT TO:<bob@example.test>", 452, "4.5.3")


async def test_mail_dsn_parameters(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2Bx", 250, "2.1.0")
    await smtp.command("RSET", 250)
    await smtp.command("MAIL FROM:<a@example.org> RET=BODY", 501, "5.5.4")
    await smtp.command("MAIL FROM:<a@example.org> ENVID=" + "x" * 101, 501, "5.5.4")


async def test_rcpt_dsn_parameters(smtp) -> None:
    await smtp.command("MAIL FROM:<a@example.org>", 250)
    await smtp.command(
        "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,DELAY"
        " ORCPT=rfc822;alice+2Bx@example.test",
        250,
        "2.1.5",
    )
    await smtp.command("RCPT TO:<bob@example.test> NOTIFY=NEVER", 250, "2.1.5")
    await smtp.command("RCPT TO:<bob@example.test> NOTIFY=NEVER,DELAY", 501, "5.5.4")
    await smtp.command("RCPT TO:<bob@example.test> NOTIFY=SOMETIMES", 501, "5.5.4")
    await smtp.command("RCPT TO:<bob@example.test> ORCPT=alice", 501, "5.5.4")
