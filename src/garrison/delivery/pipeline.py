"""The inbound delivery pipeline.

`DeliveryPipeline.deliver(envelope, blob)` runs after the SMTP server has
committed the message blob and before it answers `250`: it analyses the
message once (MIME structure, ENVELOPE, BODYSTRUCTURE, search fields) and
stores it in the INBOX of every local recipient in one group-committed
transaction. When it returns, the message is durable for all recipients;
when it raises `DeliveryError`, nothing was stored and the SMTP server
replies with the error's code.

Filters (authentication checks, anti-virus, anti-spam), Sieve and the
outbound queue plug in here as later stages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from garrison.directory import Account
from garrison.observability.log import event
from garrison.store import BlobRef, MailStore, StoreError

log = logging.getLogger("garrison.delivery")


@dataclass(slots=True)
class Recipient:
    """One accepted RCPT: the address as given and the accounts it reaches."""

    address: str
    accounts: list[Account]
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Envelope:
    """The SMTP envelope of one transaction."""

    queue_id: str
    mail_from: str
    recipients: list[Recipient]
    helo: str = ""
    client_ip: str = ""
    params: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """Delivery failed; carries the SMTP reply to send."""

    def __init__(
        self, code: int, enhanced: str, text: str, *, temporary: bool
    ) -> None:
        super().__init__(text)
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.temporary = temporary


class DeliveryPipeline:
    """Analyses and stores accepted messages for local recipients."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def deliver(self, envelope: Envelope, blob: BlobRef) -> None:
        """Store the message for every local recipient; raise DeliveryError."""
        account_ids = list(
            dict.fromkeys(
                account.id for rcpt in envelope.recipients for account in rcpt.accounts
            )
        )
        if not account_ids:
            raise DeliveryError(554, "5.1.1", "no valid recipients", temporary=False)
        try:
            analysis = self.store.analyse_blob(blob)
            uids = await self.store.deliver(account_ids, blob, analysis)
        except (OSError, StoreError) as exc:
            event(
                log, "delivery_failed", logging.ERROR,
                queue_id=envelope.queue_id, error=exc,
            )
            raise DeliveryError(
                451, "4.3.0", "local delivery failed; try again later", temporary=True
            ) from exc
        event(
            log, "delivered", queue_id=envelope.queue_id, size=blob.size,
            accounts=len(uids),
        )
