"""AUTH PLAIN and LOGIN on the submission listeners (RFC 4954, RFC 4616)."""

from __future__ import annotations

import logging

import pytest

from garrison.config import ListenerSettings
from tests.conftest import ALICE, BOB, PASSWORD
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import inbox_messages
from tests.submission.conftest import b64, plain_response


async def test_ehlo_before_tls_hides_auth(submission_server) -> None:
    async with Dialogue.connect(submission_server.port("submission")) as smtp:
        reply = await smtp.hello()
        assert "STARTTLS" in reply.lines
        assert not any(line.startswith("AUTH") for line in reply.lines)


async def test_auth_before_tls_needs_encryption(submission_server) -> None:
    async with Dialogue.connect(submission_server.port("submission")) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {plain_response()}", 538, "5.7.11")
        await smtp.command("AUTH LOGIN", 538, "5.7.11")
        await smtp.command("MAIL FROM:<alice@example.test>", 530, "5.7.0")


async def test_auth_plain_after_starttls(submission_server) -> None:
    async with Dialogue.connect(submission_server.port("submission")) as smtp:
        await smtp.hello()
        await smtp.starttls(submission_server.tls_client_context())
        reply = await smtp.command("EHLO client.example", 250)
        assert "AUTH PLAIN LOGIN" in reply.lines
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235, "2.7.0")
        await smtp.command(f"MAIL FROM:<{ALICE}>", 250)
        await smtp.command(f"RCPT TO:<{BOB}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(
            b"From: alice@example.test\r\nSubject: hi\r\n\r\nhello\r\n.\r\n"
        )
        await smtp.expect(250)

    stored = inbox_messages(submission_server, BOB)
    assert len(stored) == 1
    # RFC 3848 §2: authenticated and encrypted is ESMTPSA.
    assert b" with ESMTPSA\r\n" in stored[0]


async def test_auth_plain_with_empty_challenge(submission_server) -> None:
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        reply = await smtp.hello()
        assert "AUTH PLAIN LOGIN" in reply.lines
        challenge = await smtp.command("AUTH PLAIN", 334)
        assert challenge.lines == [""]
        await smtp.command(plain_response(), 235, "2.7.0")


async def test_auth_login_both_forms(submission_server) -> None:
    context = submission_server.tls_client_context()
    port = submission_server.port("submissions")
    async with Dialogue.connect(port, tls=context) as smtp:
        await smtp.hello()
        prompt = await smtp.command("AUTH LOGIN", 334)
        assert prompt.lines == [b64("Username:")]
        prompt = await smtp.command(b64(ALICE), 334)
        assert prompt.lines == [b64("Password:")]
        await smtp.command(b64(PASSWORD), 235, "2.7.0")

    async with Dialogue.connect(port, tls=context) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH LOGIN {b64(ALICE)}", 334)
        await smtp.command(b64(PASSWORD), 235, "2.7.0")


async def test_wrong_password_then_closed(submission_server) -> None:
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.hello()
        bad = plain_response(password="wrong-password")
        await smtp.command(f"AUTH PLAIN {bad}", 535, "5.7.8")
        await smtp.command(
            f"AUTH PLAIN {plain_response(user='nobody@example.test')}", 535, "5.7.8"
        )
        await smtp.command(f"MAIL FROM:<{ALICE}>", 530, "5.7.0")
        await smtp.command(f"AUTH PLAIN {bad}", 421, "4.7.0")
        await smtp.expect_closed()


@pytest.mark.parametrize(
    ("line", "code", "enhanced"),
    [
        ("AUTH CRAM-MD5", 504, "5.5.4"),
        ("AUTH", 501, "5.5.4"),
        ("AUTH PLAIN not!base64", 501, "5.5.2"),
        (f"AUTH PLAIN {plain_response(authzid=BOB)}", 535, "5.7.8"),
        (f"AUTH PLAIN {b64('no-nul-separators')}", 501, "5.5.2"),
        ("AUTH PLAIN =", 501, "5.5.2"),
    ],
    ids=[
        "unknown mechanism",
        "missing mechanism",
        "invalid base64",
        "acting as another user",
        "malformed plain message",
        "empty initial response",
    ],
)
async def test_bad_auth_commands(submission_server, line, code, enhanced) -> None:
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.hello()
        await smtp.command(line, code, enhanced)
        # The session is still usable afterwards.
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)


async def test_auth_cancelled_and_sequence(submission_server) -> None:
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.expect(220)
        await smtp.command(f"AUTH PLAIN {plain_response()}", 503, "5.5.1")
        await smtp.command("EHLO client.example", 250)
        await smtp.command("AUTH LOGIN", 334)
        await smtp.command("*", 501, "5.0.0")
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)
        await smtp.command(f"AUTH PLAIN {plain_response()}", 503, "5.5.1")
        await smtp.command(f"MAIL FROM:<{ALICE}>", 250)
        # RFC 4954 §4: no AUTH inside a mail transaction.
        await smtp.command("AUTH LOGIN", 503, "5.5.1")


async def test_auth_line_too_long(submission_server) -> None:
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.hello()
        await smtp.command("AUTH PLAIN", 334)
        await smtp.command("A" * 20000, 500, "5.5.6")
        await smtp.command("NOOP", 250)


async def test_mx_port_offers_no_auth_by_default(submission_server) -> None:
    async with Dialogue.connect(submission_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.starttls(submission_server.tls_client_context())
        reply = await smtp.command("EHLO client.example", 250)
        assert not any(line.startswith("AUTH") for line in reply.lines)
        await smtp.command(f"AUTH PLAIN {plain_response()}", 502, "5.5.1")


async def test_mx_port_auth_when_configured(start_server) -> None:
    server = await start_server(
        [ListenerSettings(name="smtp", protocol="smtp", port=0, auth=True)]
    )
    async with Dialogue.connect(server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {plain_response()}", 538, "5.7.11")
        await smtp.starttls(server.tls_client_context())
        await smtp.command("EHLO client.example", 250)
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)


async def test_plaintext_auth_from_loopback_when_allowed(start_server) -> None:
    server = await start_server(
        [ListenerSettings(name="smtp", protocol="smtp", port=0, tls="none", auth=True)],
        plaintext_auth_from_loopback=True,
    )
    async with Dialogue.connect(server.port("smtp")) as smtp:
        reply = await smtp.hello()
        assert "AUTH PLAIN LOGIN" in reply.lines
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)


async def test_log_has_no_password_or_payload(submission_server, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="garrison")
    response = plain_response()
    wrong = plain_response(password="wrong-password-2")
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {wrong}", 535)
        await smtp.command("AUTH LOGIN", 334)
        await smtp.command(b64(ALICE), 334)
        await smtp.command(b64(PASSWORD), 235)

    text = caplog.text
    assert "event=auth" in text
    assert "result=failed" in text
    assert "result=ok" in text
    for secret in (PASSWORD, "wrong-password-2", response, wrong, b64(PASSWORD)):
        assert secret not in text


async def test_mail_auth_parameter_accepted(submission_server) -> None:
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)
        await smtp.command(f"MAIL FROM:<{ALICE}> AUTH=<>", 250)
        await smtp.command("RSET", 250)
        await smtp.command(f"MAIL FROM:<{ALICE}> AUTH=", 501, "5.5.4")
        await smtp.command(f"MAIL FROM:<{ALICE}> AUTH={ALICE}", 250)
