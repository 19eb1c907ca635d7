"""Queue rows: the envelope types, and reads and writes of the queue tables.

Writes go through `MailStore.write`, so each is one group-committed
transaction and is durable when the call returns. Reads use a connection
of their own. Recipient status moves one way:

    queued -> delivered -> sent       (accepted by the next hop)
    queued -> failed    -> bounced    (permanent failure or expiry)

`delivered` and `failed` mean that a DSN may still be due; the step to
`sent` or `bounced` happens in the same transaction that queues the DSN,
so a crash can neither lose a bounce nor send it twice. A message whose
recipients are all `sent` or `bounced` leaves the queue.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from garrison.db.engine import connect
from garrison.store import BlobRef, MailStore
from garrison.store.writer import Transaction

QUEUED = "queued"
DELIVERED = "delivered"
FAILED = "failed"
SENT = "sent"
BOUNCED = "bounced"
FINAL_STATUSES = (SENT, BOUNCED)

_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class RecipientLike(Protocol):
    """A recipient to enqueue: its address and its RCPT parameters."""

    address: str
    params: dict[str, str]


class EnvelopeLike(Protocol):
    """An envelope to enqueue; `garrison.delivery.Envelope` has this shape."""

    queue_id: str
    mail_from: str
    recipients: Sequence[RecipientLike]
    params: dict[str, str]


@dataclass(slots=True)
class OutboundRecipient:
    """A recipient of an envelope that the queue builds itself (DSNs, forwards)."""

    address: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class OutboundEnvelope:
    """An envelope that the queue builds itself; `mail_from` "" is the null path."""

    mail_from: str
    recipients: Sequence[OutboundRecipient]
    params: dict[str, str] = field(default_factory=dict)
    queue_id: str = ""


@dataclass(slots=True)
class QueuedRecipient:
    """One recipient row of a queued message."""

    id: int
    address: str
    orcpt: str | None
    notify: str | None
    status: str
    attempts: int
    next_attempt: float
    last_code: int | None
    last_reply: str | None
    remote_host: str | None

    @property
    def domain(self) -> str:
        """The domain part in lower case ("" for a bare local part)."""
        return self.address.rpartition("@")[2].lower()

    def wants(self, kind: str) -> bool:
        """Return whether a DSN of `kind` (SUCCESS, FAILURE, DELAY) is requested.

        RFC 3461 §4.1: without NOTIFY the server sends failure DSNs and may
        send delay DSNs, which Garrison does.
        """
        if self.notify is None:
            return kind in ("FAILURE", "DELAY")
        return kind in self.notify.split(",")


@dataclass(slots=True)
class QueuedMessage:
    """A queued message with its recipient rows."""

    id: int
    queue_id: str
    blob_id: str
    size: int
    sender: str
    envid: str | None
    ret: str | None
    body: str | None
    smtputf8: bool
    created_at: float
    next_attempt: float
    held: bool
    warned: bool
    lease_owner: str | None
    lease_until: float | None
    recipients: list[QueuedRecipient] = field(default_factory=list)


@dataclass(slots=True)
class RecipientResult:
    """The outcome of one delivery attempt for one recipient row."""

    recipient_id: int
    status: str
    code: int | None
    reply: str
    remote_host: str | None = None
    next_attempt: float = 0.0


def new_queue_id() -> str:
    """Return a 16-character queue id: milliseconds, then random bits, in base32."""
    value = (int(time.time() * 1000) & ((1 << 45) - 1)) << 35 | secrets.randbits(35)
    chars = []
    for _ in range(16):
        chars.append(_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_MESSAGE_COLUMNS = (
    "id, queue_id, blob_id, size, sender, envid, ret, body, smtputf8, created_at,"
    " next_attempt, held, warned, lease_owner, lease_until"
)
_RECIPIENT_COLUMNS = (
    "id, address, orcpt, notify, status, attempts, next_attempt, last_code,"
    " last_reply, remote_host"
)


def _message(row: tuple) -> QueuedMessage:
    values = list(row)
    values[8] = bool(values[8])
    values[11] = bool(values[11])
    values[12] = bool(values[12])
    return QueuedMessage(*values)


def load_recipients(conn: sqlite3.Connection, message: QueuedMessage) -> QueuedMessage:
    """Fill `message.recipients` from the database and return the message."""
    rows = conn.execute(
        f"SELECT {_RECIPIENT_COLUMNS} FROM queue_recipients WHERE message_id = ?"
        " ORDER BY id",
        (message.id,),
    )
    message.recipients = [QueuedRecipient(*row) for row in rows]
    return message


def find_message(conn: sqlite3.Connection, queue_id: str) -> QueuedMessage | None:
    """Return the queued message with its recipients, or None."""
    row = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM queue_messages WHERE queue_id = ?",
        (queue_id,),
    ).fetchone()
    return load_recipients(conn, _message(row)) if row else None


def list_messages(conn: sqlite3.Connection) -> list[QueuedMessage]:
    """Return every queued message with its recipients, oldest first."""
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM queue_messages ORDER BY created_at, id"
    ).fetchall()
    return [load_recipients(conn, _message(row)) for row in rows]


def _notify(params: dict[str, str]) -> str | None:
    value = params.get("NOTIFY")
    return value.upper() if value else None


def insert_envelope(
    conn: sqlite3.Connection,
    envelope: EnvelopeLike,
    blob: BlobRef,
    now: float,
    next_attempt: float | None = None,
) -> str:
    """Insert the queue rows of one envelope and return the queue id.

    The envelope's queue id is kept unless it is empty or already queued
    (the same SMTP transaction may reach the queue twice, for remote
    recipients and for forwarding), in which case a new one is made.
    """
    queue_id = envelope.queue_id or new_queue_id()
    while conn.execute(
        "SELECT 1 FROM queue_messages WHERE queue_id = ?", (queue_id,)
    ).fetchone():
        queue_id = new_queue_id()

    params = envelope.params
    due = now if next_attempt is None else next_attempt
    cursor = conn.execute(
        "INSERT INTO queue_messages(queue_id, blob_id, size, sender, envid, ret,"
        " body, smtputf8, created_at, next_attempt) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            queue_id,
            blob.blob_id,
            blob.size,
            envelope.mail_from,
            params.get("ENVID"),
            (params.get("RET") or "").upper() or None,
            (params.get("BODY") or "").upper() or None,
            "SMTPUTF8" in params,
            now,
            due,
        ),
    )
    message_id = cursor.lastrowid
    conn.executemany(
        "INSERT INTO queue_recipients(message_id, address, orcpt, notify, status,"
        " next_attempt, updated_at) VALUES (?,?,?,?,?,?,?)",
        [
            (
                message_id,
                recipient.address,
                recipient.params.get("ORCPT"),
                _notify(recipient.params),
                QUEUED,
                due,
                now,
            )
            for recipient in envelope.recipients
        ],
    )
    return queue_id


def apply_results(
    conn: sqlite3.Connection, results: Iterable[RecipientResult], now: float
) -> None:
    """Record attempt outcomes; a deferral counts one more attempt."""
    for result in results:
        conn.execute(
            "UPDATE queue_recipients SET status = ?, last_code = ?, last_reply = ?,"
            " remote_host = COALESCE(?, remote_host), next_attempt = ?,"
            " attempts = attempts + 1, updated_at = ? WHERE id = ?",
            (
                result.status,
                result.code,
                result.reply,
                result.remote_host,
                result.next_attempt,
                now,
                result.recipient_id,
            ),
        )


class QueueStore:
    """Queue rows in the metadata database, written through the mail store."""

    def __init__(self, store: MailStore, db_path: Path) -> None:
        self.store = store
        self._read = connect(db_path)

    def close(self) -> None:
        self._read.close()

    async def enqueue(self, envelope: EnvelopeLike, blob: BlobRef) -> str:
        """Queue a message for its recipients; return the queue id once durable."""
        if not envelope.recipients:
            raise ValueError("an envelope without recipients cannot be queued")
        now = time.time()

        def job(txn: Transaction) -> str:
            return insert_envelope(txn.conn, envelope, blob, now)

        return await self.store.write(job)  # type: ignore[return-value]

    async def claim(self, owner: str, limit: int, lease: float) -> list[QueuedMessage]:
        """Lease up to `limit` due messages to `owner` and return them.

        A message is due when it is not held, its next attempt time has come
        and no other owner holds an unexpired lease on it.
        """
        now = time.time()

        def job(txn: Transaction) -> list[QueuedMessage]:
            rows = txn.conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM queue_messages"
                " WHERE held = 0 AND next_attempt <= ?"
                " AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)"
                " ORDER BY next_attempt LIMIT ?",
                (now, now, owner, limit),
            ).fetchall()
            messages = [_message(row) for row in rows]
            for message in messages:
                txn.conn.execute(
                    "UPDATE queue_messages SET lease_owner = ?, lease_until = ?"
                    " WHERE id = ?",
                    (owner, now + lease, message.id),
                )
                message.lease_owner, message.lease_until = owner, now + lease
                load_recipients(txn.conn, message)
            return messages

        return await self.store.write(job)  # type: ignore[return-value]

    async def renew(self, owner: str, message_ids: Sequence[int], lease: float) -> None:
        """Extend the owner's leases on the given messages."""
        until = time.time() + lease

        def job(txn: Transaction) -> None:
            txn.conn.executemany(
                "UPDATE queue_messages SET lease_until = ?"
                " WHERE id = ? AND lease_owner = ?",
                [(until, message_id, owner) for message_id in message_ids],
            )

        await self.store.write(job)

    async def record(self, results: Sequence[RecipientResult]) -> None:
        """Record attempt outcomes durably."""
        if not results:
            return
        now = time.time()

        def job(txn: Transaction) -> None:
            apply_results(txn.conn, results, now)

        await self.store.write(job)

    async def finish_attempt(self, message: QueuedMessage, owner: str) -> bool:
        """Release the lease; drop the message when no recipient is left.

        The next attempt time becomes the earliest of the queued recipients.
        Returns whether the message left the queue.
        """

        def job(txn: Transaction) -> bool:
            conn = txn.conn
            pending = conn.execute(
                "SELECT MIN(next_attempt), COUNT(*) FROM queue_recipients"
                " WHERE message_id = ? AND status NOT IN (?, ?)",
                (message.id, *FINAL_STATUSES),
            ).fetchone()
            if pending[1] == 0:
                conn.execute(
                    "DELETE FROM queue_recipients WHERE message_id = ?", (message.id,)
                )
                conn.execute("DELETE FROM queue_messages WHERE id = ?", (message.id,))
                return True
            conn.execute(
                "UPDATE queue_messages SET next_attempt = ?, lease_owner = NULL,"
                " lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (pending[0], message.id, owner),
            )
            return False

        return await self.store.write(job)  # type: ignore[return-value]

    def load(self, queue_id: str) -> QueuedMessage | None:
        """Return a queued message with its recipients, or None."""
        return find_message(self._read, queue_id)

    def messages(self) -> list[QueuedMessage]:
        """Return every queued message, oldest first."""
        return list_messages(self._read)
