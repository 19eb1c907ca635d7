"""Storage quota at SMTP delivery: 552 5.2.2 (or 452 4.2.2 when deferring),
per recipient, at RCPT and at the end of data."""

from __future__ import annotations

import asyncio

from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, BOB, inbox_messages

BODY = b"Subject: quota\r\n\r\n" + (b"x" * 98 + b"\r\n") * 30 + b".\r\n"


async def start_transaction(smtp: Dialogue) -> None:
    await smtp.hello()
    await smtp.command("MAIL FROM:<s@example.org>", 250)


def account_id(server, address: str) -> int:
    account = server.directory.get_account(address)
    assert account is not None
    return account.id


async def test_rcpt_rejected_when_already_over_quota(garrison_server):
    garrison_server.directory.set_quota(ALICE, 0)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await start_transaction(smtp)
        await smtp.command(f"RCPT TO:<{ALICE}>", 552, "5.2.2")
        await smtp.command(f"RCPT TO:<{BOB}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(BODY)
        await smtp.expect(250)
    assert len(inbox_messages(garrison_server, BOB)) == 1
    assert inbox_messages(garrison_server, ALICE) == []


async def test_data_over_quota_skips_only_that_recipient(garrison_server):
    # Room for a little, but not for this 3 KB message.
    used = garrison_server.store.account_usage(account_id(garrison_server, ALICE))
    garrison_server.directory.set_quota(ALICE, used + 1000)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await start_transaction(smtp)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command(f"RCPT TO:<{BOB}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(BODY)
        await smtp.expect(250)
    assert inbox_messages(garrison_server, ALICE) == []
    assert len(inbox_messages(garrison_server, BOB)) == 1


async def test_data_over_quota_for_every_recipient(garrison_server):
    used = garrison_server.store.account_usage(account_id(garrison_server, ALICE))
    garrison_server.directory.set_quota(ALICE, used + 1000)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await start_transaction(smtp)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(BODY)
        await smtp.expect(552, "5.2.2")
        # The session stays usable for the next transaction.
        await smtp.command("MAIL FROM:<s@example.org>", 250)
    assert inbox_messages(garrison_server, ALICE) == []


async def test_defer_setting_replies_452(garrison_server, monkeypatch):
    settings = garrison_server.store.settings
    deferring = settings.model_copy(
        update={"smtp": settings.smtp.model_copy(update={"over_quota": "defer"})}
    )
    monkeypatch.setattr(garrison_server.store, "settings", deferring)
    garrison_server.directory.set_quota(ALICE, 0)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await start_transaction(smtp)
        await smtp.command(f"RCPT TO:<{ALICE}>", 452, "4.2.2")


async def test_quota_none_lifts_the_limit(garrison_server):
    garrison_server.directory.set_quota(ALICE, 0)
    garrison_server.directory.set_quota(ALICE, None)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await start_transaction(smtp)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)


async def wait_for_inbox(server, address: str, count: int) -> list[bytes]:
    for _ in range(100):
        messages = inbox_messages(server, address)
        if len(messages) >= count:
            return messages
        await asyncio.sleep(0.1)
    return inbox_messages(server, address)


async def test_skipped_recipient_bounced_to_sender(garrison_server):
    used = garrison_server.store.account_usage(account_id(garrison_server, ALICE))
    garrison_server.directory.set_quota(ALICE, used + 1000)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command(f"MAIL FROM:<{BOB}> RET=HDRS", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command(f"RCPT TO:<{BOB}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(BODY)
        await smtp.expect(250)
    messages = await wait_for_inbox(garrison_server, BOB, 2)
    assert len(messages) == 2
    [report] = [m for m in messages if b"report-type=delivery-status" in m]
    assert b"Return-Path: <>" in report
    assert f"Final-Recipient: rfc822; {ALICE}".encode() in report
    assert b"Action: failed" in report
    assert b"Status: 5.2.2" in report
    # RET=HDRS: the header section comes back, not the body.
    assert b"Subject: quota" in report
    assert b"x" * 98 not in report
    assert inbox_messages(garrison_server, ALICE) == []


async def test_notify_never_gets_no_bounce(garrison_server):
    used = garrison_server.store.account_usage(account_id(garrison_server, ALICE))
    garrison_server.directory.set_quota(ALICE, used + 1000)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command(f"MAIL FROM:<{BOB}>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}> NOTIFY=NEVER", 250)
        await smtp.command(f"RCPT TO:<{BOB}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(BODY)
        await smtp.expect(250)
    await asyncio.sleep(1.0)
    messages = inbox_messages(garrison_server, BOB)
    assert len(messages) == 1
    assert b"report-type=delivery-status" not in messages[0]
