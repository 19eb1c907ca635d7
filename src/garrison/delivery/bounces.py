"""Bounces for recipients that an accepted message could not reach.

RFC 5321 §6.1: once the server has replied 250, it must deliver the
message or report the failure to the sender. When some accounts of a
transaction are over quota at the end of data, the others get the
message and the sender gets a DSN (RFC 3464) for the skipped ones,
queued with the null sender like the queue's own bounces. A null sender
gets no bounce, and a recipient's NOTIFY parameter (RFC 3461 §4.1) is
honoured.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from garrison.queue import dsn
from garrison.store import BlobRef, MailStore

if TYPE_CHECKING:
    from garrison.delivery.pipeline import Envelope, Recipient

# Bytes read from the start of a message to find its header section.
_HEADER_PREFIX = 256 * 1024


def wants_failure_notice(recipient: Recipient) -> bool:
    """Return whether the recipient's NOTIFY parameter requests failure DSNs."""
    notify = recipient.params.get("NOTIFY")
    if notify is None:
        return True
    return "FAILURE" in notify.upper().split(",")


def failed_recipients(
    envelope: Envelope, account_ids: Sequence[int]
) -> list[Recipient]:
    """Return the recipients whose accounts are all among `account_ids`."""
    failed = set(account_ids)
    return [
        rcpt
        for rcpt in envelope.recipients
        if rcpt.accounts and all(account.id in failed for account in rcpt.accounts)
    ]


def build_bounce(
    store: MailStore,
    envelope: Envelope,
    blob: BlobRef,
    recipients: Sequence[Recipient],
    reply_text: str,
) -> bytes:
    """Return a failure DSN to the envelope sender for `recipients`."""
    reports = [
        dsn.RecipientReport(
            address=rcpt.address,
            orcpt=rcpt.params.get("ORCPT"),
            action=dsn.ACTION_FAILED,
            status="5.2.2",
            remote_host=None,
            diagnostic=reply_text,
        )
        for rcpt in recipients
    ]
    ret_full = envelope.params.get("RET", "").upper() == "FULL"
    with store.blobs.open_ref(blob) as source:
        if ret_full and blob.size <= dsn.MAX_RETURNED_CONTENT:
            original = source.read()
        else:
            original = dsn.header_section(source.read(_HEADER_PREFIX))
    return dsn.build_dsn(
        reporting_mta=store.settings.server.hostname,
        sender=envelope.mail_from,
        queue_id=envelope.queue_id,
        envid=envelope.params.get("ENVID"),
        arrival=datetime.now(UTC),
        recipients=reports,
        original=original,
        ret_full=ret_full,
    )
