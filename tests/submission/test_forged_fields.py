"""Submitted mail cannot carry verdicts that look like ours (RFC 8601 §5)."""

from __future__ import annotations

from tests.smtpd.helpers import ALICE, BOB, inbox_messages
from tests.submission.conftest import logged_in, send_message

FORGED = (
    b"Authentication-Results: mail.example.test; dkim=pass header.d=bank.example;\r\n"
    b"\tdmarc=pass header.from=bank.example\r\n"
    b'Authentication-Results: "mail.example.test"; spf=pass\r\n'
    b"Authentication-Results: other.example; spf=none\r\n"
    b"X-Spam-Flag: NO\r\n"
    b"X-Spamd-Result: default: False [0.00 / 15.00]\r\n"
    b"From: Alice <alice@example.test>\r\n"
    b"Subject: forged verdicts\r\n"
    b"\r\n"
    b"body\r\n"
)


async def test_submitted_forged_fields_removed(submission_server) -> None:
    async with logged_in(submission_server) as smtp:
        reply = await send_message(smtp, ALICE, [BOB], FORGED)
        assert reply.code == 250
    [stored] = inbox_messages(submission_server, BOB)
    header = stored.split(b"\r\n\r\n", 1)[0]
    assert b"header.d=bank.example" not in header
    assert b'"mail.example.test"' not in header
    assert b"X-Spam-Flag" not in header
    assert b"X-Spamd-Result" not in header
    assert b"Authentication-Results: other.example; spf=none\r\n" in header
    assert stored.endswith(b"Subject: forged verdicts\r\n\r\nbody\r\n")


async def test_submitted_message_without_them_unchanged(submission_server) -> None:
    content = b"From: Alice <alice@example.test>\r\nSubject: plain\r\n\r\nbody\r\n"
    async with logged_in(submission_server) as smtp:
        reply = await send_message(smtp, ALICE, [BOB], content)
        assert reply.code == 250
    [stored] = inbox_messages(submission_server, BOB)
    assert stored.endswith(content)
