"""The queue scheduler: picks due messages and delivers them.

One `QueueScheduler` runs per node (in worker 0 of `garrison serve`). Every
`queue.poll_interval` seconds, or at once after a local enqueue, it leases
due messages (`QueueStore.claim`) and processes each in its own task:

1. Queued recipients are grouped by destination domain. A local domain is
   delivered into the store; any other goes through `Router` and
   `SMTPClient`, with at most `queue.max_connections` sessions in all and
   `queue.max_connections_per_domain` per domain.
2. Each outcome is recorded when the server answers: a positive reply to
   the content right away, before QUIT, so a crash after that point does
   not send the message again. 4yz replies defer the recipient with
   exponential back-off (`min_retry_interval` doubled per attempt, at most
   `max_retry_interval`); 5yz replies and expiry (`max_lifetime`) fail it.
3. DSNs (`reports`, `dsn`) go to the sender for failed recipients, for
   delivered ones that asked with NOTIFY=SUCCESS, and once per message as
   a delay warning after `delay_warning_after`. A message with the null
   sender never gets a DSN.

While a message is processed its lease is renewed every third of
`queue.lease_seconds`; if the worker dies, the lease runs out and the next
scheduler takes the message over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import BinaryIO

from garrison.config import Settings
from garrison.directory import Directory, Resolution
from garrison.observability.log import event
from garrison.queue.client import MailRequest, SMTPClient, SMTPClientError
from garrison.queue.records import (
    DELIVERED,
    FAILED,
    QUEUED,
    SENT,
    OutboundEnvelope,
    OutboundRecipient,
    QueuedMessage,
    QueuedRecipient,
    QueueStore,
    RecipientResult,
)
from garrison.queue.reports import ReportsMixin
from garrison.queue.routing import Router, RoutingError
from garrison.smtp.replies import Reply
from garrison.store import BlobRef, MailStore, StoreError

log = logging.getLogger("garrison.queue")

# Longest Return-Path line read when skipping it; an address is at most 256
# octets (RFC 5321 §4.5.3.1.3), so this leaves room for folding.
_MAX_TRACE_LINE = 4096


def client_tls_context(verify: bool) -> ssl.SSLContext:
    """Return the context for opportunistic STARTTLS to remote servers."""
    context = ssl.create_default_context()
    if not verify:
        # Opportunistic TLS (RFC 3207 §4.1): encryption without
        # authentication beats plaintext, and MX certificates often do not
        # match the host name, so they are not checked unless configured.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_without_return_path(store: MailStore, blob_id: str) -> BinaryIO:
    """Open a queued blob positioned after a leading Return-Path field.

    The SMTP server writes Return-Path at the top of every message it
    receives, but RFC 5321 §4.4 lets only the final delivery add it and
    says a message should not be sent on with one. The relayed copy and
    the copy stored by `_with_trace_headers`, which adds its own, skip it.
    """
    content = store.blobs.open(blob_id)
    first = content.readline(_MAX_TRACE_LINE)
    if first[:12].lower() != b"return-path:":
        content.seek(0)
        return content
    while True:
        # A folded field continues on lines that start with white space.
        position = content.tell()
        line = content.readline(_MAX_TRACE_LINE)
        if not line.startswith((b" ", b"\t")):
            content.seek(position)
            return content


def format_reply(reply: Reply) -> str:
    """Return the reply as one line: code, enhanced code and text."""
    text = " ".join(reply.text.split())
    return " ".join(part for part in (str(reply.code), reply.enhanced, text) if part)


class QueueScheduler(ReportsMixin):
    """Delivers due messages from the queue until stopped."""

    def __init__(
        self,
        settings: Settings,
        store: MailStore,
        directory: Directory,
        records: QueueStore,
        router: Router | None = None,
    ) -> None:
        self.settings = settings
        self.limits = settings.queue
        self.store = store
        self.directory = directory
        self.records = records
        self.router = router or Router(settings)
        self.hostname = settings.server.hostname
        self.owner = f"{self.hostname}:{os.getpid()}:{secrets.token_hex(4)}"
        self.tls_context = client_tls_context(self.limits.tls_verify)
        self._connections = asyncio.Semaphore(self.limits.max_connections)
        self._domains: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.limits.max_connections_per_domain)
        )
        self._active: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Start the scan loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="queue-scheduler")
            event(log, "scheduler_started", owner=self.owner)

    def wake(self) -> None:
        """Scan the queue now instead of at the next poll."""
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop scanning; give running deliveries `grace` seconds, then cancel them.

        A cancelled delivery keeps its lease until it expires, and the
        message is tried again then.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        tasks = list(self._active.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        event(log, "scheduler_stopped", owner=self.owner, cancelled=len(tasks))

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except (StoreError, OSError) as exc:
                event(log, "scan_failed", logging.ERROR, error=exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.limits.poll_interval)

    async def scan(self) -> int:
        """Lease due messages and start a task for each; return how many."""
        room = 2 * self.limits.max_connections - len(self._active)
        if room <= 0:
            return 0
        messages = await self.records.claim(self.owner, room, self.limits.lease_seconds)
        started = 0
        for message in messages:
            if message.id in self._active:
                continue
            task = asyncio.create_task(self._process(message))
            self._active[message.id] = task
            task.add_done_callback(
                lambda _t, key=message.id: self._active.pop(key, None)
            )
            started += 1
        return started

    async def run_once(self) -> None:
        """Process every due message and wait until all are done (for tests)."""
        await self.scan()
        while self._active:
            await asyncio.gather(*list(self._active.values()), return_exceptions=True)

    # -- one message ---------------------------------------------------------

    async def _process(self, message: QueuedMessage) -> None:
        renewer = asyncio.create_task(self._renew(message))
        try:
            await self._attempt(message)
            await self._notify(message.queue_id)
        except Exception as exc:  # noqa: BLE001 - logged; the lease expires
            event(
                log,
                "queue_error",
                logging.ERROR,
                queue_id=message.queue_id,
                error=repr(exc),
            )
            log.exception("queue_id=%s unexpected error", message.queue_id)
        finally:
            renewer.cancel()
        try:
            done = await self.records.finish_attempt(message, self.owner)
        except (StoreError, OSError) as exc:
            event(
                log,
                "finish_failed",
                logging.ERROR,
                queue_id=message.queue_id,
                error=exc,
            )
            return
        if done:
            event(log, "removed", queue_id=message.queue_id)

    async def _renew(self, message: QueuedMessage) -> None:
        interval = self.limits.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.records.renew(
                    self.owner, [message.id], self.limits.lease_seconds
                )
            except (StoreError, OSError) as exc:
                event(
                    log,
                    "lease_renew_failed",
                    logging.WARNING,
                    queue_id=message.queue_id,
                    error=exc,
                )

    def _expires_at(self, message: QueuedMessage) -> float:
        return message.created_at + self.limits.max_lifetime

    async def _attempt(self, message: QueuedMessage) -> None:
        now = time.time()
        due = [
            r
            for r in message.recipients
            if r.status == QUEUED and r.next_attempt <= now
        ]
        if not due:
            return
        if now >= self._expires_at(message):
            await self.records.record([self._expired(r) for r in due])
            return

        by_domain: defaultdict[str, list[QueuedRecipient]] = defaultdict(list)
        for recipient in due:
            by_domain[recipient.domain].append(recipient)
        await asyncio.gather(
            *(
                self._deliver_domain(message, domain, rcpts)
                for domain, rcpts in by_domain.items()
            )
        )

    def _expired(self, recipient: QueuedRecipient) -> RecipientResult:
        last = recipient.last_reply or "no attempt succeeded"
        return RecipientResult(
            recipient.id,
            FAILED,
            recipient.last_code or 451,
            f"4.4.7 message expired in the queue; last error: {last}",
        )

    def _outcome(
        self,
        message: QueuedMessage,
        recipient: QueuedRecipient,
        reply: Reply,
        remote_host: str | None,
        relayed_with_dsn: bool = True,
    ) -> RecipientResult:
        """Turn a reply into the recipient's new state."""
        text = format_reply(reply)
        if reply.code < 400:
            # RFC 3461 §6.2.3: a next hop without DSN gets "relayed" reports
            # from us when SUCCESS was requested; one with DSN reports itself.
            status = SENT
            explicit = recipient.notify is not None and recipient.wants("SUCCESS")
            if explicit and not (remote_host and relayed_with_dsn):
                status = DELIVERED
            return RecipientResult(recipient.id, status, reply.code, text, remote_host)
        if reply.code >= 500:
            return RecipientResult(recipient.id, FAILED, reply.code, text, remote_host)

        delay = min(
            self.limits.min_retry_interval * 2**recipient.attempts,
            self.limits.max_retry_interval,
        )
        next_attempt = time.time() + delay
        if next_attempt >= self._expires_at(message):
            failed = RecipientResult(
                recipient.id,
                FAILED,
                reply.code,
                f"4.4.7 message expired in the queue; last error: {text}",
                remote_host,
            )
            return failed
        return RecipientResult(
            recipient.id, QUEUED, reply.code, text, remote_host, next_attempt
        )

    def _log_results(
        self,
        message: QueuedMessage,
        recipients: Sequence[QueuedRecipient],
        results: Sequence[RecipientResult],
    ) -> None:
        for recipient, result in zip(recipients, results, strict=True):
            event(
                log,
                "delivery_attempt",
                queue_id=message.queue_id,
                to=f"<{recipient.address}>",
                relay=result.remote_host,
                attempt=recipient.attempts + 1,
                status=result.status,
                reply=result.reply,
            )

    async def _deliver_domain(
        self, message: QueuedMessage, domain: str, recipients: list[QueuedRecipient]
    ) -> None:
        if self.directory.is_local_domain(domain):
            results = await self._deliver_local(message, recipients)
        else:
            async with self._connections, self._domains[domain]:
                results = await self._deliver_remote(message, domain, recipients)
        pending = [r for r in results if r is not None]
        await self.records.record(pending)
        self._log_results(
            message,
            [
                rcpt
                for rcpt, r in zip(recipients, results, strict=True)
                if r is not None
            ],
            pending,
        )

    # -- local delivery ------------------------------------------------------

    async def _with_trace_headers(self, message: QueuedMessage) -> BlobRef:
        """Return a blob of the message with Return-Path and Received prepended.

        RFC 5321 §4.4: the delivering server adds Return-Path with the
        envelope sender, and every hop adds a Received field.
        """
        stamp = format_datetime(datetime.now(UTC))
        header = (
            f"Return-Path: <{message.sender}>\r\n"
            f"Received: by {self.hostname} (Garrison) with local id {message.queue_id};"
            f"\r\n\t{stamp}\r\n"
        ).encode()
        writer = self.store.blobs.create()
        try:
            writer.write(header)
            with open_without_return_path(self.store, message.blob_id) as content:
                while block := content.read(1024 * 1024):
                    writer.write(block)
        except BaseException:
            writer.abort()
            raise
        return await writer.commit()

    async def _deliver_local(
        self, message: QueuedMessage, recipients: list[QueuedRecipient]
    ) -> list[RecipientResult | None]:
        blob = BlobRef(message.blob_id, message.size)
        if any(
            self.directory.resolve_recipient(r.address).accounts for r in recipients
        ):
            try:
                traced = await self._with_trace_headers(message)
            except OSError as exc:
                reply = Reply(451, "4.3.0", f"local delivery failed: {exc}")
                return [self._outcome(message, r, reply, None) for r in recipients]
        else:
            traced = blob
        results: list[RecipientResult | None] = []
        for recipient in recipients:
            resolution = self.directory.resolve_recipient(recipient.address)
            if resolution.kind != "local":
                reply = Reply(550, "5.1.1", "user unknown")
            else:
                reply = await self._store_local(
                    message, traced, blob, resolution, recipient
                )
            results.append(self._outcome(message, recipient, reply, None))
        return results

    async def _store_local(
        self,
        message: QueuedMessage,
        traced: BlobRef,
        blob: BlobRef,
        resolution: Resolution,
        recipient: QueuedRecipient,
    ) -> Reply:
        """Store into the recipient's accounts and queue its forwards.

        `traced` is the message with trace headers, for the mailboxes;
        forwards get `blob`, the message as queued.
        """
        try:
            if resolution.accounts:
                analysis = self.store.analyse_blob(traced)
                account_ids = [account.id for account in resolution.accounts]
                await self.store.deliver(account_ids, traced, analysis)
            if resolution.forwards:
                forward = OutboundEnvelope(
                    self._forward_sender(message.sender, recipient.domain),
                    [OutboundRecipient(address) for address in resolution.forwards],
                )
                await self.records.enqueue(forward, blob)
                self.wake()
        except (OSError, StoreError) as exc:
            event(
                log,
                "local_delivery_failed",
                logging.ERROR,
                queue_id=message.queue_id,
                error=exc,
            )
            return Reply(451, "4.3.0", "local delivery failed")
        return Reply(250, "2.0.0", "delivered to the local mail store")

    def _forward_sender(self, sender: str, domain: str) -> str:
        """Return the envelope sender for mail forwarded from `domain`.

        A sender outside the local domains is rewritten with SRS0, so SPF
        checks at the next hop see our domain; the null sender stays null.
        """
        if not sender or self.directory.is_local_domain(sender.rpartition("@")[2]):
            return sender
        return self.directory.srs.forward(sender, domain)

    # -- remote delivery -----------------------------------------------------

    async def _deliver_remote(
        self, message: QueuedMessage, domain: str, recipients: list[QueuedRecipient]
    ) -> list[RecipientResult | None]:
        try:
            hops = await self.router.route(domain)
        except RoutingError as exc:
            reply = Reply(exc.code, exc.enhanced, exc.text)
            return [self._outcome(message, r, reply, None) for r in recipients]

        last_error = Reply(451, "4.4.1", f"no mail server for {domain} answered")
        for hop in hops:
            for address in hop.addresses:
                client = SMTPClient(self.hostname, self.tls_context)
                try:
                    await client.connect(
                        address, hop.port, self.limits.connect_timeout, hop.host
                    )
                except SMTPClientError as exc:
                    client.abort()
                    last_error = exc.reply
                    event(
                        log,
                        "connect_failed",
                        logging.WARNING,
                        queue_id=message.queue_id,
                        relay=f"{hop.host}[{address}]",
                        reply=format_reply(exc.reply),
                    )
                    continue
                try:
                    return await self._transaction(
                        message, client, f"{hop.host}[{address}]:{hop.port}", recipients
                    )
                finally:
                    await client.close()
        return [self._outcome(message, r, last_error, None) for r in recipients]

    async def _transaction(
        self,
        message: QueuedMessage,
        client: SMTPClient,
        relay: str,
        recipients: list[QueuedRecipient],
    ) -> list[RecipientResult | None]:
        """Send the message to the connected server; record accepted ones at once."""
        has_dsn = "DSN" in client.extensions
        recorded: set[int] = set()

        async def on_accepted(indexes: list[int], reply: Reply) -> None:
            accepted = [recipients[i] for i in indexes]
            results = [
                self._outcome(message, r, reply, relay, has_dsn) for r in accepted
            ]
            # Durable before QUIT: a crash from here on must not resend.
            await asyncio.shield(self.records.record(results))
            self._log_results(message, accepted, results)
            recorded.update(indexes)

        request = MailRequest(
            sender=message.sender,
            recipients=[r.address for r in recipients],
            size=message.size,
            open_content=lambda: open_without_return_path(self.store, message.blob_id),
            eight_bit=message.body == "8BITMIME" or self._is_eight_bit(message),
            smtputf8=message.smtputf8,
            envid=message.envid,
            ret=message.ret,
            notify=[r.notify for r in recipients],
            orcpt=[r.orcpt for r in recipients],
        )
        try:
            replies = await client.send(request, on_accepted)
        except SMTPClientError as exc:
            client.abort()
            replies = [exc.reply] * len(recipients)
        return [
            None if i in recorded else self._outcome(message, r, reply, relay, has_dsn)
            for i, (r, reply) in enumerate(zip(recipients, replies, strict=True))
        ]

    def _is_eight_bit(self, message: QueuedMessage) -> bool:
        # NOTE: only the first megabyte is checked; a message with 8-bit
        # octets further down and no BODY=8BITMIME goes out as 7bit.
        with self.store.blobs.open(message.blob_id) as content:
            return any(byte > 0x7F for byte in content.read(1024 * 1024))
