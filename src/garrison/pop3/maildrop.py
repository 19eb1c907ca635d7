"""The maildrop of one POP3 session: a snapshot of the account's INBOX.

RFC 1939 §5 numbers the messages of the maildrop from 1 when the session
enters the TRANSACTION state, and the numbers stay fixed for the session:
mail delivered later is not shown, and DELE only marks a message. The marks
take effect in the UPDATE state, after QUIT (RFC 1939 §6), through
`deleted_uids` and `seen_uids`.

Unique-ids (UIDL, RFC 1939 §7) are derived from the IMAP UIDVALIDITY and UID
of the message, so they are stable across sessions and agree with IMAP.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from garrison.pop3 import replies
from garrison.pop3.errors import POP3Error

SEEN = "\\Seen"


class _StoredMessage(Protocol):
    """The fields of `garrison.store` MessageRecord that a maildrop reads."""

    uid: int
    size: int
    blob_id: str
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class MaildropMessage:
    """One message of the maildrop, under its session message number."""

    number: int
    uid: int
    size: int
    blob_id: str
    unique_id: str
    seen: bool


def unique_id(uidvalidity: int, uid: int) -> str:
    """Return the UIDL unique-id of a message: UIDVALIDITY and UID in hex.

    RFC 1939 §7 allows 1 to 70 characters in 0x21-0x7E; this gives 16 or
    more hex digits, unique for as long as the mailbox keeps its UIDVALIDITY.
    """
    return f"{uidvalidity:08x}{uid:08x}"


class Maildrop:
    """Message numbers, sizes and deletion marks for one session.

    Built from the INBOX records at login, ascending by UID. The maildrop
    does no I/O; the session applies `deleted_uids` and `seen_uids` to the
    store at QUIT.
    """

    def __init__(
        self,
        mailbox_id: int,
        uidvalidity: int,
        records: Sequence[_StoredMessage],
    ) -> None:
        self.mailbox_id = mailbox_id
        self.uidvalidity = uidvalidity
        self._messages = [
            MaildropMessage(
                number=index,
                uid=record.uid,
                size=record.size,
                blob_id=record.blob_id,
                unique_id=unique_id(uidvalidity, record.uid),
                seen=SEEN in record.flags,
            )
            for index, record in enumerate(records, start=1)
        ]
        self._deleted: set[int] = set()
        self._retrieved: set[int] = set()

    @property
    def count(self) -> int:
        """Number of messages not marked as deleted."""
        return len(self._messages) - len(self._deleted)

    # NOTE: sizes are the stored sizes. For a message stored with bare LF line
    # endings (possible through IMAP APPEND) RETR sends CRLF, so it sends more
    # octets than LIST and STAT report.
    @property
    def octets(self) -> int:
        """Total size of the messages not marked as deleted, in octets."""
        return sum(message.size for message in self.messages())

    def messages(self) -> Iterator[MaildropMessage]:
        """Yield the messages not marked as deleted, by message number."""
        for message in self._messages:
            if message.number not in self._deleted:
                yield message

    def get(self, number: int) -> MaildropMessage:
        """Return message `number`.

        Raises POP3Error when the number is out of range or the message is
        marked as deleted: RFC 1939 §5 forbids referring to such a message.
        """
        if not 1 <= number <= len(self._messages):
            raise POP3Error(replies.NO_SUCH_MESSAGE.format(number=number))
        if number in self._deleted:
            raise POP3Error(replies.MESSAGE_DELETED.format(number=number))
        return self._messages[number - 1]

    def delete(self, number: int) -> None:
        """Mark message `number` as deleted; raise POP3Error as `get` does."""
        self.get(number)
        self._deleted.add(number)

    def mark_retrieved(self, number: int) -> None:
        """Record that RETR sent message `number`, so QUIT marks it \\Seen."""
        self._retrieved.add(number)

    def reset(self) -> None:
        """Unmark all deleted and retrieved messages (RSET, RFC 1939 §5)."""
        self._deleted.clear()
        self._retrieved.clear()

    def deleted_uids(self) -> list[int]:
        """Return the UIDs marked as deleted, ascending."""
        return sorted(self._messages[number - 1].uid for number in self._deleted)

    def seen_uids(self) -> list[int]:
        """Return the UIDs retrieved, not deleted and not yet \\Seen, ascending."""
        uids = []
        for number in sorted(self._retrieved - self._deleted):
            message = self._messages[number - 1]
            if not message.seen:
                uids.append(message.uid)
        return uids
