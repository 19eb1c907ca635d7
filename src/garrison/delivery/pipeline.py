"""The inbound delivery pipeline.

`DeliveryPipeline.deliver(envelope, blob)` runs after the SMTP server has
received the message blob and before it replies `250`: it analyses the
message once (MIME structure, ENVELOPE, BODYSTRUCTURE, search fields) and
stores it in the INBOX of every local recipient in one group-committed
transaction. A small blob arrives `pending` (in memory only), and only the
final content, with the fields the checks add, is written to disk. When it returns, the message is durable for all recipients;
when it raises `DeliveryError`, nothing was stored and the SMTP server
replies with the error's code.

Quota: `check_recipient` rejects, at RCPT time, a recipient whose every
account is already over quota. At the end of data each account is checked
again with the message size; accounts the message would put over quota are
skipped, and only when every account is skipped does delivery fail, so one
full mailbox does not fail the other recipients. The reply is 552 5.2.2, or
452 4.2.2 when `smtp.over_quota` is "defer". When others got the message,
the sender gets a DSN for the skipped recipients (`delivery.bounces`).

Submitted mail (`Envelope.authenticated_as` set) is DKIM-signed first, when
the sender's domain has a key, so local and remote recipients get the same
signed copy. Recipients without accounts are remote: after the local
recipients are stored, they are handed to the outbound queue with
`OutboundQueue.enqueue(envelope, blob)`; without a queue, delivery to them
fails with 451.

Mail from outside (not submitted) first runs through the configured
checks (`garrison.filters.chain`: reputation, SPF, DKIM, ARC, DMARC,
anti-spam). Their verdict rejects the message with its reply, sends it to
the quarantine, or files it into Junk for some or all accounts; the
message is stored with an Authentication-Results field carrying our
authserv-id and the fields the checks added, and without incoming fields
that claim our authserv-id (RFC 8601 §5).

Anti-virus scanning, when `antivirus.enabled` is set, runs next on every
message, received on the MX or on submission: an infected message fails with
554 5.7.0, or with `antivirus.on_infected = "quarantine"` is stored in the
quarantine instead of the mailboxes and accepted, and a failed scan fails
with 451 4.7.0 unless `antivirus.on_error` is "accept". Sieve plugs in here
as a later stage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Protocol

from garrison.delivery.bounces import (
    build_bounce,
    failed_recipients,
    wants_failure_notice,
)
from garrison.delivery.headers import (
    VERDICT_FIELDS,
    format_field,
    has_forged_fields,
    read_header,
    rewrite_header,
)
from garrison.delivery.signing import MessageSigner, SigningError
from garrison.directory import Account
from garrison.filters import QuarantineVerdict, scanner_from_settings
from garrison.filters.chain import checks_from_settings
from garrison.filters.verdict import InboundMessage, Verdict
from garrison.governance import Quarantine
from garrison.observability.log import event
from garrison.smtp import replies
from garrison.smtp.replies import Reply
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
    # The login of an authenticated (submission) client, else "".
    authenticated_as: str = ""


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


class OutboundQueue(Protocol):
    """The outbound queue as the pipeline uses it."""

    async def enqueue(self, envelope: Envelope, blob_ref: BlobRef) -> str:
        """Queue the message durably for the envelope's recipients.

        Returns the queue id; raises OSError or StoreError on failure.
        """
        ...


class DeliveryPipeline:
    """Signs submitted mail, stores it for local recipients and queues the rest."""

    def __init__(
        self,
        store: MailStore,
        outbound: OutboundQueue | None = None,
        signer: MessageSigner | None = None,
    ) -> None:
        self.store = store
        self.outbound = outbound
        self.signer = signer
        self.antivirus = scanner_from_settings(store.settings.antivirus, store.blobs)
        self.quarantine = Quarantine(store)
        self.checks = checks_from_settings(store.settings, store)
        self.authserv_id = (
            store.settings.authentication.authserv_id or store.settings.server.hostname
        )

    def close(self) -> None:
        """Close the signer's key store and the quarantine's connection."""
        if self.signer is not None:
            self.signer.close()
        self.quarantine.close()

    def quota_error(self) -> DeliveryError:
        """Return the error for mail to an account over quota, as configured."""
        reply: Reply = replies.MAILBOX_FULL
        if self.store.settings.smtp.over_quota == "defer":
            reply = replies.MAILBOX_FULL_DEFER
        return DeliveryError(
            reply.code, reply.enhanced, reply.text, temporary=reply.is_temporary
        )

    def check_recipient(self, accounts: list[Account]) -> None:
        """Raise DeliveryError when every account of a recipient is over quota."""
        if not accounts:
            return
        for account in accounts:
            limit = account.quota_bytes
            if limit is None or self.store.account_usage(account.id) < limit:
                return
        raise self.quota_error()

    async def deliver(self, envelope: Envelope, blob: BlobRef) -> None:
        """Check, scan, sign, store and queue the message; raise DeliveryError."""
        verdict: Verdict | None = None
        if not envelope.authenticated_as and self.checks:
            blob, verdict = await self._check(envelope, blob)
            if verdict.quarantine is not None:
                await self._quarantine(envelope, blob, verdict.quarantine)
                return
        else:
            blob = await self._strip_forged(envelope, blob)
        if self.antivirus is not None:
            refusal = await self.antivirus.check(envelope.queue_id, blob)
            if isinstance(refusal, QuarantineVerdict):
                await self._quarantine(envelope, blob, refusal.reason)
                return
            if refusal is not None:
                raise DeliveryError(
                    refusal.code, refusal.enhanced, refusal.text,
                    temporary=refusal.is_temporary,
                )

        if envelope.authenticated_as and self.signer is not None:
            blob = await self._sign(envelope, blob)
        blob = await self._persist(envelope, blob)
        remote = [rcpt for rcpt in envelope.recipients if not rcpt.accounts]
        account_ids = list(
            dict.fromkeys(
                account.id for rcpt in envelope.recipients for account in rcpt.accounts
            )
        )
        if not account_ids:
            if remote:
                await self._enqueue(envelope, remote, blob)
                return
            raise DeliveryError(554, "5.1.1", "no valid recipients", temporary=False)
        try:
            analysis = self.store.analyse_blob(blob)
            uids = await self.store.deliver(
                account_ids, blob, analysis, skip_over_quota=True,
                junk_accounts=verdict.junk_for(account_ids) if verdict else (),
            )
        except (OSError, StoreError) as exc:
            event(
                log, "delivery_failed", logging.ERROR,
                queue_id=envelope.queue_id, error=exc,
            )
            raise DeliveryError(
                451, "4.3.0", "local delivery failed; try again later", temporary=True
            ) from exc
        skipped = [account_id for account_id in account_ids if account_id not in uids]
        if skipped:
            event(
                log, "quota_rejected", logging.WARNING, queue_id=envelope.queue_id,
                size=blob.size, accounts=skipped,
            )
        if not uids and not remote:
            raise self.quota_error()
        if skipped:
            await self._bounce_skipped(envelope, blob, skipped)
        if uids:
            event(
                log, "delivered", queue_id=envelope.queue_id, size=blob.size,
                accounts=len(uids),
            )
        if remote:
            # NOTE: the local copies are already committed; if queueing fails,
            # the client retries and local recipients get the message twice.
            await self._enqueue(envelope, remote, blob)

    async def _bounce_skipped(
        self, envelope: Envelope, blob: BlobRef, skipped: list[int]
    ) -> None:
        """Queue a DSN to the sender for the recipients left out over quota.

        The other recipients already have the message, so a failure here
        is logged and does not fail the transaction.
        """
        recipients = [
            rcpt
            for rcpt in failed_recipients(envelope, skipped)
            if wants_failure_notice(rcpt)
        ]
        if not envelope.mail_from or not recipients or self.outbound is None:
            return
        reply = replies.MAILBOX_FULL
        diagnostic = f"smtp; {reply.code} {reply.enhanced} {reply.text}"
        try:
            report = await asyncio.to_thread(
                build_bounce, self.store, envelope, blob, recipients, diagnostic
            )
            report_blob = await self.store.blobs.put(report)
            bounce = Envelope(
                queue_id=envelope.queue_id,
                mail_from="",
                recipients=[Recipient(envelope.mail_from, [])],
            )
            queue_id = await self.outbound.enqueue(bounce, report_blob)
        except (OSError, StoreError) as exc:
            event(
                log, "bounce_failed", logging.ERROR, queue_id=envelope.queue_id,
                error=exc,
            )
            return
        event(
            log, "bounced", queue_id=envelope.queue_id, dsn_queue_id=queue_id,
            recipients=len(recipients), reason="over quota",
        )

    async def _check(
        self, envelope: Envelope, blob: BlobRef
    ) -> tuple[BlobRef, Verdict]:
        """Run the checks; return the blob with the added fields and the verdict."""
        try:
            header, trace_end = await asyncio.to_thread(read_header, self.store, blob)
        except SigningError as exc:
            raise DeliveryError(552, "5.3.4", str(exc), temporary=False) from exc
        except OSError as exc:
            raise self._local_error(envelope, exc) from exc
        message = InboundMessage(
            envelope, blob, header, trace_end, reader=self._read_blob
        )
        verdict = await self.checks.run(message)
        if verdict.reject is not None:
            reply = verdict.reject
            raise DeliveryError(
                reply.code, reply.enhanced, reply.text, temporary=reply.is_temporary
            )
        # RFC 8601 §2.2: "none" when no method produced a result.
        results = "; ".join(verdict.auth_results) or "none"
        added = [format_field("Authentication-Results", f"{self.authserv_id}; {results}")]
        added += [format_field(name, value) for name, value in verdict.headers]
        try:
            blob = await rewrite_header(
                self.store, blob, added, verdict.strip_headers, self.authserv_id
            )
        except OSError as exc:
            raise self._local_error(envelope, exc) from exc
        return blob, verdict

    async def _strip_forged(self, envelope: Envelope, blob: BlobRef) -> BlobRef:
        """Remove fields that claim our authserv-id or carry a spam verdict.

        RFC 8601 §5: such fields did not come from us, and a user who
        submits mail must not be able to plant them either. A message
        without them is left as it is.
        """
        try:
            if blob.data is not None:
                header, _ = read_header(self.store, blob)
            else:
                header, _ = await asyncio.to_thread(read_header, self.store, blob)
        except SigningError as exc:
            raise DeliveryError(552, "5.3.4", str(exc), temporary=False) from exc
        except OSError as exc:
            raise self._local_error(envelope, exc) from exc
        if not has_forged_fields(header, self.authserv_id):
            return blob
        try:
            return await rewrite_header(
                self.store, blob, [], VERDICT_FIELDS, self.authserv_id
            )
        except OSError as exc:
            raise self._local_error(envelope, exc) from exc

    def _read_blob(self, blob: BlobRef) -> bytes:
        return self.store.blobs.read(blob.blob_id)

    def _local_error(self, envelope: Envelope, exc: Exception) -> DeliveryError:
        event(
            log, "delivery_failed", logging.ERROR,
            queue_id=envelope.queue_id, error=exc,
        )
        return DeliveryError(
            451, "4.3.0", "local delivery failed; try again later", temporary=True
        )

    async def _persist(self, envelope: Envelope, blob: BlobRef) -> BlobRef:
        """Write the file of a blob the SMTP server left in memory only."""
        try:
            return await self.store.blobs.persist(blob)
        except OSError as exc:
            raise self._local_error(envelope, exc) from exc

    async def _quarantine(self, envelope: Envelope, blob: BlobRef, reason: str) -> None:
        blob = await self._persist(envelope, blob)
        try:
            await self.quarantine.add(envelope, blob, reason)
        except (OSError, StoreError) as exc:
            event(
                log, "quarantine_failed", logging.ERROR,
                queue_id=envelope.queue_id, error=exc,
            )
            raise DeliveryError(
                451, "4.3.0", "local delivery failed; try again later", temporary=True
            ) from exc

    async def _sign(self, envelope: Envelope, blob: BlobRef) -> BlobRef:
        assert self.signer is not None
        try:
            return await self.signer.sign(envelope, blob)
        except SigningError as exc:
            raise DeliveryError(552, "5.3.4", str(exc), temporary=False) from exc
        except OSError as exc:
            event(
                log, "dkim_failed", logging.ERROR, queue_id=envelope.queue_id,
                error=exc,
            )
            raise DeliveryError(
                451, "4.3.0", "signing failed; try again later", temporary=True
            ) from exc

    async def _enqueue(
        self, envelope: Envelope, remote: list[Recipient], blob: BlobRef
    ) -> None:
        if self.outbound is None:
            raise DeliveryError(
                451, "4.3.0", "outbound delivery is not available; try again later",
                temporary=True,
            )
        outbound_envelope = dataclasses.replace(envelope, recipients=remote)
        try:
            queue_id = await self.outbound.enqueue(outbound_envelope, blob)
        except (OSError, StoreError) as exc:
            event(
                log, "enqueue_failed", logging.ERROR, queue_id=envelope.queue_id,
                error=exc,
            )
            raise DeliveryError(
                451, "4.3.0", "queueing failed; try again later", temporary=True
            ) from exc
        event(
            log, "enqueued", queue_id=envelope.queue_id, outbound_queue_id=queue_id,
            size=blob.size, recipients=len(remote),
        )
