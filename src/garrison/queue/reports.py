"""Delivery status notifications queued by the scheduler.

`ReportsMixin._notify(queue_id)` reads a message's recorded outcomes and,
in one transaction, queues the DSNs they call for (with the null sender,
to the original sender) and marks the recipients `sent` or `bounced`, so
a crash can neither lose a DSN nor queue it twice. The mixin expects the
attributes that `QueueScheduler` sets: `store`, `records`, `limits` and
`hostname`.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

from garrison.observability.log import event
from garrison.queue import dsn
from garrison.queue.records import (
    BOUNCED,
    DELIVERED,
    FAILED,
    QUEUED,
    SENT,
    OutboundEnvelope,
    OutboundRecipient,
    QueuedMessage,
    QueuedRecipient,
    insert_envelope,
)
from garrison.store.writer import Transaction

log = logging.getLogger("garrison.queue")

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# Bytes read from the start of a blob to find its header section for a DSN.
_HEADER_PREFIX = 256 * 1024


def status_code(recipient: QueuedRecipient) -> str:
    """Return the RFC 3463 status of a recipient's last reply."""
    match = _ENHANCED.search(recipient.last_reply or "")
    if match is not None:
        return match.group(1)
    code = recipient.last_code or 0
    if code >= 500:
        return "5.0.0"
    if code >= 400:
        return "4.0.0"
    return "2.0.0"


class ReportsMixin:
    """Builds and queues DSNs; mixed into `QueueScheduler`."""

    async def _notify(self, queue_id: str) -> None:
        """Queue the DSNs that recorded outcomes call for, in one transaction."""
        message = self.records.load(queue_id)
        if message is None:
            return
        now = time.time()
        failed = [r for r in message.recipients if r.status == FAILED]
        delivered = [r for r in message.recipients if r.status == DELIVERED]
        delayed: list[QueuedRecipient] = []
        warn_after = self.limits.delay_warning_after
        if warn_after and not message.warned and now - message.created_at >= warn_after:
            delayed = [
                r
                for r in message.recipients
                if r.status == QUEUED and r.attempts > 0 and r.wants("DELAY")
            ]
        if not (failed or delivered or delayed):
            return

        reports: list[bytes] = []
        if message.sender:
            groups = (
                (dsn.ACTION_FAILED, [r for r in failed if r.wants("FAILURE")]),
                (None, delivered),
                (dsn.ACTION_DELAYED, delayed),
            )
            for action, group in groups:
                if group:
                    reports.append(self._build_report(message, action, group, now))
        else:
            event(
                log,
                "dsn_suppressed",
                queue_id=queue_id,
                reason="null sender",
                failed=len(failed),
            )

        blobs = [await self.store.blobs.put(report) for report in reports]
        sender = message.sender

        def job(txn: Transaction) -> list[str]:
            conn = txn.conn
            queue_ids = [
                insert_envelope(
                    conn,
                    OutboundEnvelope("", [OutboundRecipient(sender)]),
                    blob,
                    now,
                )
                for blob in blobs
            ]
            conn.executemany(
                "UPDATE queue_recipients SET status = ?, updated_at = ? WHERE id = ?",
                [(BOUNCED, now, r.id) for r in failed]
                + [(SENT, now, r.id) for r in delivered],
            )
            if delayed:
                conn.execute(
                    "UPDATE queue_messages SET warned = 1 WHERE id = ?", (message.id,)
                )
            return queue_ids

        dsn_ids = await self.store.write(job)
        for dsn_id in dsn_ids:  # type: ignore[union-attr]
            event(
                log,
                "dsn_queued",
                queue_id=queue_id,
                dsn_queue_id=dsn_id,
                to=f"<{sender}>",
            )
        if dsn_ids:
            self.wake()

    def _build_report(
        self,
        message: QueuedMessage,
        action: str | None,
        recipients: list[QueuedRecipient],
        now: float,
    ) -> bytes:
        reports = []
        for recipient in recipients:
            if action is None:
                kind = (
                    dsn.ACTION_RELAYED
                    if recipient.remote_host
                    else dsn.ACTION_DELIVERED
                )
            else:
                kind = action
            retry_until = None
            if kind == dsn.ACTION_DELAYED:
                retry_until = datetime.fromtimestamp(self._expires_at(message), UTC)
            reports.append(
                dsn.RecipientReport(
                    address=recipient.address,
                    orcpt=recipient.orcpt,
                    action=kind,
                    status=status_code(recipient),
                    remote_host=_host_name(recipient.remote_host),
                    diagnostic=recipient.last_reply,
                    will_retry_until=retry_until,
                )
            )
        ret_full = message.ret != "HDRS" and action == dsn.ACTION_FAILED
        with self.store.blobs.open(message.blob_id) as content:
            if ret_full and message.size <= dsn.MAX_RETURNED_CONTENT:
                original = content.read()
            else:
                original = dsn.header_section(content.read(_HEADER_PREFIX))
        return dsn.build_dsn(
            reporting_mta=self.hostname,
            sender=message.sender,
            queue_id=message.queue_id,
            envid=message.envid,
            arrival=datetime.fromtimestamp(message.created_at, UTC),
            recipients=reports,
            original=original,
            ret_full=ret_full,
            now=datetime.fromtimestamp(now, UTC),
        )


def _host_name(relay: str | None) -> str | None:
    """Return the host name of a "host[address]:port" relay string."""
    if not relay:
        return None
    return relay.partition("[")[0] or relay
