"""The outbound queue: durable queue, scheduler, SMTP client, routing, DSNs.

API for the delivery pipeline:

    queue_id = await queue.enqueue(envelope, blob_ref)

`envelope` has the shape of `garrison.delivery.Envelope`:

- `queue_id`: kept when free, else a new one is made;
- `mail_from`: the sender, "" for the null reverse-path;
- `params`: MAIL parameters (ENVID, RET, BODY, SMTPUTF8);
- `recipients`: each with `address` and `params`, the RCPT parameters
  (NOTIFY, ORCPT) with xtext already decoded.

`blob_ref` is a committed blob. When
`enqueue` returns, the message and one row per recipient are committed
(one group-committed transaction), so the SMTP server may reply `250`.
Recipients in local domains may be queued too: the scheduler stores them
locally.

What is durable when:

- After `enqueue`: the message is delivered or bounced even if the process
  is killed.
- A recipient's outcome is committed as soon as the remote server answers
  the content (before QUIT), so after a crash no recipient that the
  next hop accepted is sent the message again. The one exception is a
  crash between the server's `250` and that commit, a window of one
  database commit: the duplicate-message problem that RFC 1047 describes.
- A DSN is queued in the same transaction that marks its recipients done.

Temporary (4yz, time-outs, DNS failures) versus permanent (5yz, NXDOMAIN,
null MX) failures, back-off and expiry are described in `scheduler`.
Only one worker process runs the scheduler; a lease on each message
(owner and expiry, renewed while the delivery runs) keeps two schedulers
from delivering the same message.

Modules: `records` (tables), `routing` (MX, RFC 7505), `client` (SMTP
client), `dsn` (RFC 3464 and RFC 6522 reports), `reports` (which DSNs
to queue), `scheduler`, `admin`
(the `garrison queue` commands).

Implemented RFCs: 5321 (client side), 1870, 2920, 3030, 3207, 3461, 3464,
6152, 6522, 6531 (no downgrade), 7505.
"""

from __future__ import annotations

from garrison.config import Settings
from garrison.directory import Directory
from garrison.queue.records import (
    EnvelopeLike,
    OutboundEnvelope,
    OutboundRecipient,
    QueuedMessage,
    QueuedRecipient,
    QueueStore,
)
from garrison.queue.routing import Router
from garrison.queue.scheduler import QueueScheduler
from garrison.store import BlobRef, MailStore


class OutboundQueue:
    """The queue service of one process: enqueue, and the scheduler when started."""

    def __init__(
        self, settings: Settings, store: MailStore, directory: Directory
    ) -> None:
        self.settings = settings
        self.store = store
        self.directory = directory
        self.records = QueueStore(store, settings.db_path)
        self.scheduler: QueueScheduler | None = None

    async def enqueue(self, envelope: EnvelopeLike, blob_ref: BlobRef) -> str:
        """Queue a message durably and return its queue id.

        Raises ValueError for an envelope without recipients, and StoreError
        or OSError when the commit fails (nothing was queued then).
        """
        queue_id = await self.records.enqueue(envelope, blob_ref)
        if self.scheduler is not None:
            self.scheduler.wake()
        return queue_id

    def start_scheduler(self, router: Router | None = None) -> QueueScheduler:
        """Start delivering from the queue in this process."""
        if self.scheduler is None:
            self.scheduler = QueueScheduler(
                self.settings, self.store, self.directory, self.records, router
            )
            self.scheduler.start()
        return self.scheduler

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the scheduler, if running, after `grace` seconds for deliveries."""
        if self.scheduler is not None:
            await self.scheduler.stop(grace)
            self.scheduler = None

    def close(self) -> None:
        self.records.close()


__all__ = [
    "EnvelopeLike",
    "OutboundEnvelope",
    "OutboundQueue",
    "OutboundRecipient",
    "QueueScheduler",
    "QueueStore",
    "QueuedMessage",
    "QueuedRecipient",
    "Router",
]
