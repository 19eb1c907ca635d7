"""Delivery failures map to their replies; timeouts close idle sessions."""

from __future__ import annotations

import pytest

from garrison.delivery import DeliveryError, Envelope
from garrison.store import BlobRef
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE


class FailingDelivery:
    """A delivery stand-in that raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def check_recipient(self, accounts: list) -> None:
        """Accept every recipient at RCPT: these tests are about the end of data."""

    async def deliver(self, envelope: Envelope, blob: BlobRef) -> None:
        self.calls += 1
        raise self.error


def smtp_protocol(garrison_server):
    for listener, _, protocol in garrison_server.runner.servers:
        if listener.name == "smtp":
            return protocol
    raise AssertionError("no smtp listener")


async def send_one(smtp: Dialogue) -> None:
    await smtp.hello()
    await smtp.command("MAIL FROM:<s@example.org>", 250)
    await smtp.command(f"RCPT TO:<{ALICE}>", 250)
    await smtp.command("DATA", 354)
    await smtp.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")


@pytest.mark.parametrize(
    ("error", "code", "enhanced"),
    [
        (DeliveryError(451, "4.3.0", "try again later", temporary=True), 451, "4.3.0"),
        (DeliveryError(552, "5.2.2", "mailbox full", temporary=False), 552, "5.2.2"),
        (RuntimeError("bug"), 451, "4.3.0"),
    ],
    ids=["temporary failure", "permanent failure", "unexpected exception"],
)
async def test_delivery_error_reply(
    garrison_server, monkeypatch, error, code, enhanced
) -> None:
    delivery = FailingDelivery(error)
    monkeypatch.setattr(smtp_protocol(garrison_server), "delivery", delivery)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await send_one(smtp)
        await smtp.expect(code, enhanced)
        # The transaction is over and the session goes on.
        await smtp.command("DATA", 503, "5.5.1")
        await smtp.command("MAIL FROM:<s@example.org>", 250)
    assert delivery.calls == 1
    assert list(garrison_server.settings.spool_dir.glob("*.tmp")) == []


async def test_command_timeout_closes(garrison_server, monkeypatch) -> None:
    server = smtp_protocol(garrison_server)
    smtp_settings = server.settings.smtp.model_copy(update={"command_timeout": 0.3})
    monkeypatch.setattr(
        server, "settings", server.settings.model_copy(update={"smtp": smtp_settings})
    )
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.expect(421, "4.4.2")
        await smtp.expect_closed()


async def test_blob_write_failure_drains_and_replies_451(
    garrison_server, monkeypatch
) -> None:
    from garrison.store.blobs import BlobWriter

    original_write = BlobWriter.write

    def failing_write(self, data) -> None:
        # The trace headers are the first write; the content fails.
        if self.size > 0:
            raise OSError(28, "No space left on device")
        original_write(self, data)

    monkeypatch.setattr(BlobWriter, "write", failing_write)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await send_one(smtp)
        await smtp.expect(451, "4.3.0")
        # The rest of the message was read as content, not as commands.
        await smtp.command("NOOP", 250)
    assert list(garrison_server.settings.spool_dir.glob("*.tmp")) == []
