"""A 100 MB message streams through the server in bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest

from garrison.delivery import Envelope
from garrison.store import BlobRef
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, inbox_messages, split_trace

MiB = 1024 * 1024
MESSAGE_SIZE = 100 * MiB
# Python-level allocations allowed while the message passes through, both
# client and server side: a few read buffers and the blob writer's buffer.
MAX_PEAK_GROWTH = 16 * MiB


@pytest.fixture
def settings(settings):
    """The shared settings with room for a 100 MB message."""
    smtp = settings.smtp.model_copy(update={"max_message_size": MESSAGE_SIZE + MiB})
    return settings.model_copy(update={"smtp": smtp})


class RecordingDelivery:
    """Stands in for the delivery pipeline: records what it was given.

    The memory test measures the SMTP server alone; message analysis in
    the pipeline has its own memory profile.
    """

    def __init__(self) -> None:
        self.delivered: list[tuple[Envelope, BlobRef]] = []

    def check_recipient(self, accounts: list) -> None:
        """Accept every recipient at RCPT: these tests are about the end of data."""

    async def deliver(self, envelope: Envelope, blob: BlobRef) -> None:
        self.delivered.append((envelope, blob))


def smtp_protocol(garrison_server):
    for listener, _, protocol in garrison_server.runner.servers:
        if listener.name == "smtp":
            return protocol
    raise AssertionError("no smtp listener")


async def test_large_message_bounded_memory(garrison_server, monkeypatch) -> None:
    delivery = RecordingDelivery()
    monkeypatch.setattr(smtp_protocol(garrison_server), "delivery", delivery)
    line = b"0123456789abcdef" * 6 + b"\r\n"  # 98 octets
    block = line * (MiB // len(line))
    header = b"Subject: big\r\n\r\n"
    blocks = (MESSAGE_SIZE - len(header)) // len(block)
    digest = hashlib.sha256(header)

    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<big@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)

        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            await smtp.send(header)
            for _ in range(blocks):
                await smtp.send(block)
                digest.update(block)
            await smtp.send(b".\r\n")
            reply = await smtp.expect(250, timeout=120)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        queue_id = reply.text.rsplit(" ", 1)[-1]

    assert peak - baseline < MAX_PEAK_GROWTH, (
        f"peak grew by {(peak - baseline) / MiB:.1f} MiB"
    )

    [(envelope, blob)] = delivery.delivered
    assert envelope.queue_id == queue_id
    assert [recipient.address for recipient in envelope.recipients] == [ALICE]
    content_size = len(header) + blocks * len(block)
    with garrison_server.store.blobs.open(blob.blob_id) as stored:
        trace = b""
        while not trace.endswith(b"\r\n") or not trace.split(b"\r\n")[-2].endswith(
            b"+0000"
        ):
            trace += stored.read(1)
            assert len(trace) < 2000
        stored_digest = hashlib.sha256()
        for chunk in iter(lambda: stored.read(MiB), b""):
            stored_digest.update(chunk)
    assert queue_id.encode() in trace
    assert blob.size == len(trace) + content_size
    assert stored_digest.hexdigest() == digest.hexdigest()


async def test_message_over_4_mib_reaches_inbox(garrison_server) -> None:
    content = b"Subject: five MiB\r\n\r\n" + (b"x" * 98 + b"\r\n") * (5 * MiB // 100)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<big@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(content + b".\r\n")
        await smtp.expect(250, timeout=60)
    [stored] = inbox_messages(garrison_server)
    assert split_trace(stored)[1] == content
