"""The session's view of its selected mailbox.

RFC 3501 §2.3.1.2: message sequence numbers are per session and change only
when this session announces it (EXPUNGE, EXISTS). `SelectedMailbox` keeps
the sequence number -> UID map (`uids`, ascending) and the flags last
reported to the client. The store calls `on_change` after every committed
change to the mailbox; `refresh` then reads what changed since the MODSEQ
last seen and turns it into untagged responses.

Expunges by other sessions are announced only when the command allows it
(RFC 3501 §7.4.1: not during FETCH, STORE or SEARCH). Until then the UID
keeps its sequence number, and a FETCH on it returns no data, because the
store no longer has the message; it never returns another message's data.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from garrison.imap.encoder import Response, flag_list
from garrison.imap.types import UID, ModSeq, SeqNum, SequenceSet, format_uid_set
from garrison.store import Mailbox, MailStore, MessageRecord


@dataclass(frozen=True, slots=True)
class UpdateStyle:
    """How unsolicited updates are worded for the session's enabled extensions.

    `modseq`: FETCH updates carry MODSEQ (RFC 7162 §3.1.4, after CONDSTORE).
    `vanished`: VANISHED replaces EXPUNGE (RFC 7162 §3.2.10, after QRESYNC).
    `recent`: EXISTS is followed by RECENT (RFC 3501 §7.3.2; RFC 9051
    dropped RECENT).
    """

    modseq: bool = False
    vanished: bool = False
    recent: bool = True


REV1_STYLE = UpdateStyle()


class InvalidSequenceNumber(Exception):
    """A message sequence number above the number of messages."""


class SelectedMailbox:
    """Sequence map, reported flags and change tracking of one selected mailbox."""

    def __init__(
        self,
        store: MailStore,
        mailbox: Mailbox,
        records: list[MessageRecord],
        modseq: int,
        readonly: bool,
    ) -> None:
        self.store = store
        self.mailbox = mailbox
        self.mailbox_id = mailbox.id
        self.readonly = readonly
        self.uids: list[UID] = [UID(record.uid) for record in records]
        self.flags: dict[int, frozenset[str]] = {
            record.uid: record.flags for record in records
        }
        self.modseq = ModSeq(modseq)
        # RFC 3501 §2.3.2: the messages that are \Recent in this session.
        self.recent: set[int] = set()
        self.pending_expunges: set[int] = set()
        # RFC 5182 §2.1: the UIDs saved by SEARCH RETURN (SAVE), for "$".
        self.saved_uids: list[int] = []
        self.changed = False
        self._claims: set[asyncio.Future[int]] = set()
        self.wakeup = asyncio.Event()
        store.subscribe(self.mailbox_id, self.on_change)

    def close(self) -> None:
        self.store.unsubscribe(self.mailbox_id, self.on_change)

    def with_recent(self, uid: int, flags: frozenset[str]) -> frozenset[str]:
        """Return the flags to show for a message, with \\Recent where it applies."""
        if uid in self.recent:
            return flags | {"\\Recent"}
        return flags

    def _claim_in_background(self) -> None:
        claim = asyncio.ensure_future(self.store.claim_recent(self.mailbox_id))
        self._claims.add(claim)

        def finished(future: asyncio.Future[int]) -> None:
            self._claims.discard(future)
            if not future.cancelled():
                # A mailbox deleted meanwhile has nothing left to claim.
                future.exception()

        claim.add_done_callback(finished)

    @property
    def recent_count(self) -> int:
        return sum(1 for uid in self.uids if uid in self.recent)

    def take_recent(self, first_recent_uid: int) -> None:
        """Mark the messages from `first_recent_uid` on as \\Recent in this session."""
        self.recent.update(uid for uid in self.uids if uid >= first_recent_uid)

    def on_change(self) -> None:
        """Store callback: note the change and wake an IDLE waiting on it."""
        self.changed = True
        self.wakeup.set()

    # -- sequence numbers and UIDs ------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> SeqNum | None:
        index = bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return SeqNum(index + 1)
        return None

    def resolve_sequence_set(
        self, sequence_set: SequenceSet
    ) -> list[tuple[SeqNum, UID]]:
        """Return (sequence number, UID) pairs for a message sequence set.

        RFC 3501 §9: a number above the message count is invalid; raises
        `InvalidSequenceNumber`.
        """
        count = len(self.uids)
        for low, high in sequence_set.resolve(count):
            if high > count or low < 1:
                raise InvalidSequenceNumber(
                    f"message sequence number {high} does not exist"
                )
        return [
            (SeqNum(seq), self.uids[seq - 1])
            for seq in sequence_set.iter_sorted(count, count)
        ]

    def resolve_uid_set(self, sequence_set: SequenceSet) -> list[tuple[SeqNum, UID]]:
        """Return (sequence number, UID) pairs for the UIDs of a UID set that exist.

        RFC 3501 §6.4.8: `*` is the largest UID in use, and UIDs that do not
        exist are ignored.
        """
        largest = self.uids[-1] if self.uids else 0
        indexes: set[int] = set()
        for low, high in sequence_set.resolve(largest):
            start = bisect_left(self.uids, low)
            end = bisect_right(self.uids, high)
            indexes.update(range(start, end))
        return [(SeqNum(index + 1), self.uids[index]) for index in sorted(indexes)]

    def resolve_saved(self) -> list[tuple[SeqNum, UID]]:
        """Return (sequence number, UID) pairs of the saved search result.

        RFC 5182 §2.1: expunged messages drop out of the saved result, so
        only UIDs still in the sequence map count.
        """
        pairs = []
        for uid in self.saved_uids:
            seq = self.seq_of(uid)
            if seq is not None:
                pairs.append((seq, UID(uid)))
        return pairs

    def resolve(self, sequence_set: SequenceSet, uid: bool) -> list[tuple[SeqNum, UID]]:
        if sequence_set.saved:
            return self.resolve_saved()
        if uid:
            return self.resolve_uid_set(sequence_set)
        return self.resolve_sequence_set(sequence_set)

    # -- change reporting -------------------------------------------------

    def note_flags(self, records: Iterable[MessageRecord]) -> None:
        """Record flags that this session already reported (after its own STORE)."""
        for record in records:
            if record.uid in self.flags:
                self.flags[record.uid] = record.flags

    def refresh(
        self, response: Response, allow_expunge: bool, style: UpdateStyle = REV1_STYLE
    ) -> None:
        """Add untagged EXPUNGE, EXISTS and FETCH FLAGS for changes since last time."""
        if self.changed:
            self.changed = False
            self._read_changes(response, style)
        if allow_expunge and self.pending_expunges:
            self._announce_expunges(response, style)

    def _read_changes(self, response: Response, style: UpdateStyle) -> None:
        mailbox = self.store.mailbox_by_id(self.mailbox_id)
        # Read the watermark first: a change committed after it has a larger
        # MODSEQ and is read again on the next refresh, which is harmless
        # because every step below ignores what was already reported.
        watermark = mailbox.highestmodseq
        if watermark <= self.modseq:
            return
        for uid in self.store.vanished_since(self.mailbox_id, self.modseq):
            if uid in self.flags:
                self.pending_expunges.add(uid)
        last_uid = self.uids[-1] if self.uids else 0
        new_uids = []
        for record in self.store.changes_since(self.mailbox_id, self.modseq):
            if record.uid > last_uid:
                new_uids.append(record.uid)
                self.flags[record.uid] = record.flags
                continue
            known = self.flags.get(record.uid)
            if known is None or known == record.flags:
                continue
            self.flags[record.uid] = record.flags
            seq = self.seq_of(record.uid)
            if seq is not None and record.uid not in self.pending_expunges:
                line = b"%d FETCH (UID %d FLAGS %s" % (
                    seq,
                    record.uid,
                    flag_list(self.with_recent(record.uid, record.flags)),
                )
                if style.modseq:
                    # RFC 7162 §3.2: unsolicited FETCH carries MODSEQ.
                    line += b" MODSEQ (%d)" % record.modseq
                response.untagged(line + b")")
        if new_uids:
            self.uids.extend(UID(uid) for uid in new_uids)
            # RFC 3501 §2.3.2: this session is the first to learn of the new
            # messages, so they are \Recent here. A read-write session claims
            # them so that later sessions do not see them as recent. Which of
            # two sessions notified at the same time gets them is undefined.
            recent = [uid for uid in new_uids if uid >= mailbox.recent_uid]
            if recent:
                self.recent.update(recent)
                if not self.readonly:
                    self._claim_in_background()
            response.untagged(b"%d EXISTS" % len(self.uids))
            if style.recent:
                # RFC 3501 §7.3.2: RECENT accompanies EXISTS.
                response.untagged(b"%d RECENT" % self.recent_count)
        self.modseq = ModSeq(max(self.modseq, watermark))

    def _announce_expunges(self, response: Response, style: UpdateStyle) -> None:
        gone = self.pending_expunges
        if style.vanished:
            # RFC 7162 §3.2.10: one VANISHED with the UIDs replaces EXPUNGE.
            announced = sorted(uid for uid in self.uids if uid in gone)
            if announced:
                response.untagged("VANISHED " + format_uid_set(announced))
        else:
            # RFC 3501 §7.4.1: each EXPUNGE renumbers the following messages,
            # so announce from the highest sequence number down; then the
            # numbers sent are valid at the moment each line is read.
            for index in range(len(self.uids) - 1, -1, -1):
                if self.uids[index] in gone:
                    response.untagged(b"%d EXPUNGE" % (index + 1))
        self.uids = [uid for uid in self.uids if uid not in gone]
        for uid in gone:
            self.flags.pop(uid, None)
        self.pending_expunges = set()

    def remove_expunged(
        self, uids: Iterable[int], response: Response, style: UpdateStyle = REV1_STYLE
    ) -> None:
        """Announce UIDs this session expunged itself (EXPUNGE, MOVE, CLOSE)."""
        self.pending_expunges.update(uid for uid in uids if uid in self.flags)
        self._announce_expunges(response, style)
