"""Shared helpers for SMTP server tests: reading delivered messages back."""

from __future__ import annotations

import re

ALICE = "alice@example.test"
BOB = "bob@example.test"
CHECK_FIELD = re.compile(
    rb"(?:Authentication-Results|Received-SPF|X-Spam-[\w-]+):", re.I
)


def inbox_messages(server, address: str = ALICE) -> list[bytes]:
    """Return the bytes of every message in the account's INBOX, oldest first."""
    resolution = server.directory.resolve_recipient(address)
    assert resolution.kind == "local", resolution
    account = resolution.accounts[0]
    mailbox = server.store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    records = server.store.messages(mailbox.id)
    return [server.store.blobs.read(record.blob_id) for record in records]


def split_trace(message: bytes) -> tuple[list[bytes], bytes]:
    """Split the Return-Path and Received fields from the message we sent.

    Returns the trace header lines (continuations joined) and the rest.
    """
    lines = message.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: <"), lines[0]
    assert lines[1].startswith(b"Received: from "), lines[1]
    index = 2
    while lines[index].startswith(b"\t"):
        index += 1
    trace = [lines[0], b" ".join(line.strip() for line in lines[1:index])]
    # The fields the inbound checks add follow the trace fields.
    while index < len(lines) and CHECK_FIELD.match(lines[index]):
        index += 1
        while index < len(lines) and lines[index].startswith((b"\t", b" ")):
            index += 1
    return trace, b"\r\n".join(lines[index:])
