"""The quarantine: accepted messages kept out of the users' mailboxes.

`Quarantine.add` stores one row per SMTP transaction in the `quarantine`
table, in a store write job, so the row is committed before the SMTP server
replies 250. The message content stays in its blob.

`Quarantine.release` delivers a message to its original recipients in one
transaction that also deletes the row: local recipients get it in their
INBOX through the store's delivery job, and remote recipients are queued
for outbound delivery. A second release of the same id finds no row and
raises QuarantineNotFound, so a message is released at most once.
`Quarantine.delete` drops the row without delivering.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from garrison.db.engine import connect
from garrison.observability.log import event
from garrison.queue.records import OutboundEnvelope, OutboundRecipient, insert_envelope
from garrison.store import BlobRef, MailStore
from garrison.store.writer import Transaction

log = logging.getLogger("garrison.governance.quarantine")

_COLUMNS = "id, blob_id, size, sender, params, recipients, reason, queue_id, created_at"


class QuarantineNotFound(Exception):
    """No quarantined message has the requested id."""


class AccountLike(Protocol):
    """An account a recipient reached; `garrison.directory.Account` has this shape."""

    id: int


class RecipientLike(Protocol):
    """An accepted RCPT; `garrison.delivery.Recipient` has this shape."""

    address: str
    accounts: Sequence[AccountLike]
    params: dict[str, str]


class EnvelopeLike(Protocol):
    """An SMTP envelope; `garrison.delivery.Envelope` has this shape."""

    queue_id: str
    mail_from: str
    recipients: Sequence[RecipientLike]
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class QuarantinedRecipient:
    """One original recipient: the address, its RCPT parameters and account ids."""

    address: str
    params: dict[str, str] = field(default_factory=dict)
    account_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    """One quarantined message and the envelope it arrived with."""

    id: int
    blob_id: str
    size: int
    sender: str
    params: dict[str, str]
    recipients: list[QuarantinedRecipient]
    reason: str
    queue_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """The outcome of a release: INBOX UIDs per account id and the outbound queue id."""

    uids: dict[int, int]
    outbound_queue_id: str | None


def _message_from_row(row: tuple) -> QuarantinedMessage:
    id_, blob_id, size, sender, params, recipients, reason, queue_id, created = row
    return QuarantinedMessage(
        id=id_,
        blob_id=blob_id,
        size=size,
        sender=sender,
        params=json.loads(params),
        recipients=[
            QuarantinedRecipient(
                item["address"], item.get("params", {}), item.get("accounts", [])
            )
            for item in json.loads(recipients)
        ],
        reason=reason,
        queue_id=queue_id,
        created_at=created,
    )


class Quarantine:
    """Adds, lists, releases and deletes quarantined messages in the store."""

    def __init__(self, store: MailStore) -> None:
        self.store = store
        # Reads use a connection of their own; writes go through the store.
        self._read = connect(store.settings.db_path)

    def close(self) -> None:
        """Close the read connection."""
        self._read.close()

    async def add(self, envelope: EnvelopeLike, blob: BlobRef, reason: str) -> int:
        """Store the message in the quarantine and return its id once committed."""
        recipients = json.dumps(
            [
                {
                    "address": rcpt.address,
                    "params": dict(rcpt.params),
                    "accounts": [account.id for account in rcpt.accounts],
                }
                for rcpt in envelope.recipients
            ]
        )
        row = (
            blob.blob_id,
            blob.size,
            envelope.mail_from,
            json.dumps(dict(envelope.params)),
            recipients,
            reason,
            envelope.queue_id,
            time.time(),
        )

        def job(txn: Transaction) -> int:
            cursor = txn.conn.execute(
                "INSERT INTO quarantine(blob_id, size, sender, params, recipients,"
                " reason, queue_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid)

        quarantine_id = int(await self.store.write(job))
        event(
            log, "quarantined", logging.WARNING, queue_id=envelope.queue_id,
            quarantine_id=quarantine_id, size=blob.size, reason=reason,
            recipients=len(envelope.recipients),
        )
        return quarantine_id

    def list(self) -> list[QuarantinedMessage]:
        """Return every quarantined message, oldest first."""
        rows = self._read.execute(
            f"SELECT {_COLUMNS} FROM quarantine ORDER BY created_at, id"
        ).fetchall()
        return [_message_from_row(row) for row in rows]

    def get(self, quarantine_id: int) -> QuarantinedMessage:
        """Return one message; raise QuarantineNotFound if there is none."""
        row = self._read.execute(
            f"SELECT {_COLUMNS} FROM quarantine WHERE id = ?", (quarantine_id,)
        ).fetchone()
        if row is None:
            raise _not_found(quarantine_id)
        return _message_from_row(row)

    async def release(self, quarantine_id: int) -> ReleaseResult:
        """Deliver the message to its original recipients and delete its row.

        Local recipients get it in their INBOX without a quota check, because
        an administrator chose to release it. Accounts removed since the
        message arrived are skipped. Recipients without accounts are queued
        for outbound delivery. Raises QuarantineNotFound when the id is not
        (or no longer) quarantined.
        """
        message = self.get(quarantine_id)
        blob = BlobRef(message.blob_id, message.size)
        analysis = self.store.analyse_blob(blob)
        account_ids = list(
            dict.fromkeys(
                account_id
                for rcpt in message.recipients
                for account_id in rcpt.account_ids
            )
        )
        remote = [
            OutboundRecipient(rcpt.address, rcpt.params)
            for rcpt in message.recipients
            if not rcpt.account_ids
        ]

        def job(txn: Transaction) -> ReleaseResult:
            conn = txn.conn
            # The row is deleted in the same transaction as the delivery, so
            # two concurrent releases cannot both deliver.
            if conn.execute(
                "DELETE FROM quarantine WHERE id = ? RETURNING id", (quarantine_id,)
            ).fetchone() is None:
                raise _not_found(quarantine_id)
            existing = [
                account_id
                for account_id in account_ids
                if conn.execute(
                    "SELECT 1 FROM accounts WHERE id = ?", (account_id,)
                ).fetchone()
            ]
            uids: dict[int, int] = {}
            if existing:
                uids = self.store.deliver_job(existing, blob, analysis)(txn)
            outbound_queue_id = None
            if remote:
                envelope = OutboundEnvelope(
                    message.sender, remote, message.params, message.queue_id
                )
                outbound_queue_id = insert_envelope(conn, envelope, blob, time.time())
            return ReleaseResult(uids, outbound_queue_id)

        result: ReleaseResult = await self.store.write(job)  # type: ignore[assignment]
        event(
            log, "quarantine_released", queue_id=message.queue_id,
            quarantine_id=quarantine_id, accounts=len(result.uids),
            outbound_queue_id=result.outbound_queue_id or "-",
        )
        return result

    async def delete(self, quarantine_id: int) -> None:
        """Drop the message from the quarantine without delivering it."""

        def job(txn: Transaction) -> None:
            if txn.conn.execute(
                "DELETE FROM quarantine WHERE id = ? RETURNING id", (quarantine_id,)
            ).fetchone() is None:
                raise _not_found(quarantine_id)

        await self.store.write(job)
        event(log, "quarantine_deleted", quarantine_id=quarantine_id)


def _not_found(quarantine_id: int) -> QuarantineNotFound:
    return QuarantineNotFound(
        f"quarantine id {quarantine_id} not found; see 'garrison quarantine list'"
    )
