"""The mail store service: mailboxes, messages, flags, UIDs and MODSEQs.

Reads run on the caller's thread through a read connection (SQLite WAL lets
them proceed while the writer commits). Every write is a job for the
`GroupCommitWriter`, so a write returns only after its transaction is
durable. After each commit, the mailboxes it changed are announced through
the `ChangeHub`.

UIDs are assigned from `mailboxes.uidnext` and never reused within one
UIDVALIDITY. Every change to a message (new, flags, expunge) takes the
mailbox's next MODSEQ (RFC 7162 §3.1), and expunged UIDs are kept in
`vanished` with the MODSEQ of their removal.
"""

from __future__ import annotations

import mmap
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, NewType

from garrison.config import Settings
from garrison.db.engine import connect
from garrison.message import MessageAnalysis, analyse
from garrison.store import flags as flagbits
from garrison.store.blobs import BlobRef, BlobStore
from garrison.store.errors import MailboxExists, MailboxNotFound, StoreError
from garrison.store.fulltext import (
    FullTextIndex,
    SearchDocument,
    build_document,
)
from garrison.store.notify import ChangeHub
from garrison.store.quota import QuotaUsage, fits, read_usage, require_fits
from garrison.store.writer import GroupCommitWriter, Transaction

UID = NewType("UID", int)
ModSeq = NewType("ModSeq", int)

INBOX = "INBOX"
DELIMITER = "/"
DEFAULT_MAILBOXES = (
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
FlagOperation = Literal["add", "remove", "replace"]

# Blobs up to this size are read whole for analysis; larger ones are mapped.
_READ_LIMIT = 4 * 1024 * 1024
_META_CACHE_SIZE = 20000


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool
    # RFC 3501 §2.3.2: messages with this UID or above are still \Recent.
    recent_uid: int = 1


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    messages: int
    unseen: int
    recent: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    size: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    uid: int
    flags: frozenset[str]
    internaldate: datetime
    size: int
    modseq: int
    blob_id: str


def normalize_name(name: str) -> str:
    """Return the stored form of a mailbox name: INBOX is case-insensitive."""
    if name.upper() == INBOX:
        return INBOX
    if name.upper().startswith(INBOX + DELIMITER):
        return INBOX + name[len(INBOX) :]
    return name


def _validate_name(name: str) -> None:
    if not name or name.startswith(DELIMITER) or name.endswith(DELIMITER):
        raise StoreError(f"invalid mailbox name {name!r}")
    if DELIMITER * 2 in name or any(ord(ch) < 0x20 or ch == "\x7f" for ch in name):
        raise StoreError(f"invalid mailbox name {name!r}")
    if len(name.encode("utf-8")) > 1024:
        raise StoreError("mailbox name is longer than 1024 bytes")


_MESSAGE_COLUMNS = "uid, flags, keywords, internaldate, internaldate_tz, size, modseq, blob_id"
_ZONES: dict[int, timezone] = {}


def _zone(minutes: int) -> timezone:
    zone = _ZONES.get(minutes)
    if zone is None:
        zone = _ZONES[minutes] = timezone(timedelta(minutes=minutes))
    return zone


def _record(row: tuple) -> MessageRecord:
    uid, bits, keywords, stamp, tz, size, modseq, blob_id = row
    return MessageRecord(
        uid,
        flagbits.unpack(bits, keywords),
        datetime.fromtimestamp(stamp, _zone(tz)),
        size,
        modseq,
        blob_id,
    )


def _stamp(when: datetime | None) -> tuple[int, int]:
    if when is None:
        when = datetime.now().astimezone()
    if when.tzinfo is None:
        when = when.astimezone()
    offset = when.utcoffset() or timedelta(0)
    return int(when.timestamp()), int(offset.total_seconds() // 60)


class MailStore:
    """Mailboxes and messages of every account, over SQLite and local blobs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.blobs = BlobStore(settings.blob_dir, settings.spool_dir)
        self._hub = ChangeHub()
        self._commit_listeners: list[Callable[[set[int]], None]] = []
        self._writer = GroupCommitWriter(
            settings.db_path, self._after_commit, settings.store.group_commit_max
        )
        self._read = connect(settings.db_path)
        self.fulltext = FullTextIndex(self._read)
        self._meta_cache: OrderedDict[str, MessageAnalysis] = OrderedDict()
        self._writer.start()

    def close(self) -> None:
        """Finish queued writes and close the database connections."""
        self._writer.stop()
        self._read.close()

    # -- notifications ------------------------------------------------------

    def subscribe(self, mailbox_id: int, callback: Callable[[], None]) -> None:
        """Call `callback()` on the event loop after each change to the mailbox."""
        self._hub.subscribe(mailbox_id, callback)

    def unsubscribe(self, mailbox_id: int, callback: Callable[[], None]) -> None:
        self._hub.unsubscribe(mailbox_id, callback)

    def add_commit_listener(self, listener: Callable[[set[int]], None]) -> None:
        """Call `listener(mailbox_ids)` after each local commit (to tell other processes)."""
        self._commit_listeners.append(listener)

    def notify_changed(self, mailbox_ids: Iterable[int]) -> None:
        """Announce changes committed by another process to local subscribers."""
        self._hub.publish(mailbox_ids)

    def _after_commit(self, mailbox_ids: set[int]) -> None:
        self._hub.publish(mailbox_ids)
        for listener in self._commit_listeners:
            listener(mailbox_ids)

    # -- mailboxes ----------------------------------------------------------

    def _mailbox_from_row(self, row: tuple, subscribed: set[str]) -> Mailbox:
        mailbox_id, account_id, name, uidvalidity, uidnext, modseq, special, recent = row
        return Mailbox(
            mailbox_id, account_id, name, uidvalidity, uidnext, modseq, special,
            name in subscribed, recent,
        )

    async def claim_recent(self, mailbox_id: int) -> int:
        """Claim the mailbox's \\Recent messages for the calling session.

        Returns the first UID that was still recent. Every message from it up
        to the current UIDNEXT is \\Recent for the caller and for no later
        session (RFC 3501 §2.3.2).
        """

        def job(txn: Transaction) -> int:
            row = txn.conn.execute(
                "SELECT recent_uid FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                raise MailboxNotFound(f"mailbox {mailbox_id} does not exist")
            txn.conn.execute(
                "UPDATE mailboxes SET recent_uid = uidnext WHERE id = ?", (mailbox_id,)
            )
            return int(row[0])

        return await self._writer.run(job)

    def subscriptions(self, account_id: int) -> set[str]:
        """Return the names the account subscribed to, existing or not."""
        rows = self._read.execute(
            "SELECT name FROM subscriptions WHERE account_id = ?", (account_id,)
        )
        return {name for (name,) in rows}

    def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        """Return the account's mailboxes ordered by name."""
        subscribed = self.subscriptions(account_id)
        rows = self._read.execute(
            "SELECT id, account_id, name, uidvalidity, uidnext, highestmodseq,"
            " special_use, recent_uid FROM mailboxes WHERE account_id = ? ORDER BY name",
            (account_id,),
        ).fetchall()
        return [self._mailbox_from_row(row, subscribed) for row in rows]

    def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        """Return the named mailbox, or None."""
        name = normalize_name(name)
        row = self._read.execute(
            "SELECT id, account_id, name, uidvalidity, uidnext, highestmodseq,"
            " special_use, recent_uid FROM mailboxes WHERE account_id = ? AND name = ?",
            (account_id, name),
        ).fetchone()
        if row is None:
            return None
        subscribed = self._read.execute(
            "SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?",
            (account_id, name),
        ).fetchone()
        return self._mailbox_from_row(row, {name} if subscribed else set())

    def mailbox_by_id(self, mailbox_id: int) -> Mailbox:
        row = self._read.execute(
            "SELECT id, account_id, name, uidvalidity, uidnext, highestmodseq,"
            " special_use, recent_uid FROM mailboxes WHERE id = ?",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise MailboxNotFound(f"mailbox {mailbox_id} does not exist")
        return self._mailbox_from_row(row, set())

    @staticmethod
    def _next_uidvalidity(conn) -> int:
        row = conn.execute("SELECT value FROM settings WHERE key = 'uidvalidity'").fetchone()
        last = int(row[0]) if row else 0
        value = max(int(time.time()), last + 1)
        conn.execute(
            "INSERT INTO settings(key, value) VALUES ('uidvalidity', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(value).encode(),),
        )
        return value

    @classmethod
    def _insert_mailbox(
        cls, conn, account_id: int, name: str, special_use: str | None
    ) -> int:
        exists = conn.execute(
            "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?",
            (account_id, name),
        ).fetchone()
        if exists:
            raise MailboxExists(f"mailbox {name!r} already exists")
        cursor = conn.execute(
            "INSERT INTO mailboxes(account_id, name, uidvalidity, uidnext,"
            " highestmodseq, special_use) VALUES (?, ?, ?, 1, 1, ?)",
            (account_id, name, cls._next_uidvalidity(conn), special_use),
        )
        return int(cursor.lastrowid)

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """Create a mailbox; raises MailboxExists or StoreError for a bad name."""
        name = normalize_name(name)
        _validate_name(name)

        def job(txn: Transaction) -> int:
            return self._insert_mailbox(txn.conn, account_id, name, special_use)

        mailbox_id = await self._writer.run(job)
        return self.mailbox_by_id(mailbox_id)

    def provision_job(self, account_id: int) -> Callable[[Transaction], None]:
        """Return a write job that creates INBOX and the special-use mailboxes."""

        def job(txn: Transaction) -> None:
            for name, special in ((INBOX, None), *DEFAULT_MAILBOXES):
                try:
                    self._insert_mailbox(txn.conn, account_id, name, special)
                except MailboxExists:
                    continue
                if name != INBOX:
                    txn.conn.execute(
                        "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)",
                        (account_id, name),
                    )

        return job

    async def provision(self, account_id: int) -> None:
        """Create the default mailboxes of a new account (idempotent)."""
        await self._writer.run(self.provision_job(account_id))

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        """Delete a mailbox and its messages. INBOX cannot be deleted."""
        name = normalize_name(name)
        if name == INBOX:
            raise StoreError("INBOX cannot be deleted")

        def job(txn: Transaction) -> None:
            row = txn.conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                (account_id, name),
            ).fetchone()
            if row is None:
                raise MailboxNotFound(f"mailbox {name!r} does not exist")
            size = txn.conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = ?", row
            ).fetchone()[0]
            txn.conn.execute("DELETE FROM messages WHERE mailbox_id = ?", row)
            txn.conn.execute("DELETE FROM vanished WHERE mailbox_id = ?", row)
            txn.conn.execute("DELETE FROM mailboxes WHERE id = ?", row)
            self._add_usage(txn.conn, account_id, -size)
            txn.changed.add(row[0])

        await self._writer.run(job)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its children (RFC 3501 §6.3.5).

        Renaming INBOX moves its messages to a new mailbox and leaves INBOX
        empty.
        """
        old, new = normalize_name(old), normalize_name(new)
        _validate_name(new)
        if new == INBOX:
            raise MailboxExists("mailbox 'INBOX' already exists")

        def job(txn: Transaction) -> None:
            conn = txn.conn
            row = conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                (account_id, old),
            ).fetchone()
            if row is None:
                raise MailboxNotFound(f"mailbox {old!r} does not exist")
            if conn.execute(
                "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?",
                (account_id, new),
            ).fetchone():
                raise MailboxExists(f"mailbox {new!r} already exists")
            if old == INBOX:
                self._move_inbox(txn, account_id, row[0], new)
                return
            children = conn.execute(
                "SELECT id, name FROM mailboxes WHERE account_id = ? AND"
                " substr(name, 1, ?) = ?",
                (account_id, len(old) + 1, old + DELIMITER),
            ).fetchall()
            conn.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new, row[0]))
            for child_id, child_name in children:
                conn.execute(
                    "UPDATE mailboxes SET name = ? WHERE id = ?",
                    (new + child_name[len(old) :], child_id),
                )
            txn.changed.add(row[0])

        await self._writer.run(job)

    def _move_inbox(self, txn: Transaction, account_id: int, inbox_id: int, new: str) -> None:
        target = self._insert_mailbox(txn.conn, account_id, new, None)
        uids = [uid for (uid,) in txn.conn.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (inbox_id,)
        )]
        self._copy_rows(txn, inbox_id, uids, target, remove=True)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Add or remove a subscription; the mailbox need not exist."""
        name = normalize_name(name)

        def job(txn: Transaction) -> None:
            if subscribed:
                txn.conn.execute(
                    "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", (account_id, name)
                )
            else:
                txn.conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, name),
                )

        await self._writer.run(job)

    def status(self, mailbox_id: int) -> MailboxStatus:
        """Return counters for STATUS and SELECT."""
        mailbox = self.mailbox_by_id(mailbox_id)
        count, unseen, size, recent = self._read.execute(
            "SELECT COUNT(*), COALESCE(SUM((flags & 1) = 0), 0), COALESCE(SUM(size), 0),"
            " COALESCE(SUM(uid >= ?), 0) FROM messages WHERE mailbox_id = ?",
            (mailbox.recent_uid, mailbox_id),
        ).fetchone()
        return MailboxStatus(
            count, unseen, recent, mailbox.uidnext, mailbox.uidvalidity,
            mailbox.highestmodseq, size,
        )

    def deleted_usage(self, mailbox_id: int) -> tuple[int, int]:
        """Return the count and total size of the messages flagged \\Deleted."""
        count, size = self._read.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages"
            " WHERE mailbox_id = ? AND (flags & ?) != 0",
            (mailbox_id, flagbits.DELETED),
        ).fetchone()
        return int(count), int(size)

    # -- messages: reads ----------------------------------------------------

    def uids(self, mailbox_id: int) -> list[int]:
        """Return the UIDs in the mailbox, ascending."""
        rows = self._read.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
        )
        return [uid for (uid,) in rows]

    def messages(
        self, mailbox_id: int, uids: Sequence[int] | None = None
    ) -> list[MessageRecord]:
        """Return message records ascending by UID, all or those in `uids`."""
        if uids is None:
            rows = self._read.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?"
                " ORDER BY uid",
                (mailbox_id,),
            )
            return [_record(row) for row in rows]
        if not uids:
            return []
        wanted = set(uids)
        if len(wanted) <= 64:
            marks = ",".join("?" * len(wanted))
            rows = self._read.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?"
                f" AND uid IN ({marks}) ORDER BY uid",
                (mailbox_id, *wanted),
            )
            return [_record(row) for row in rows]
        rows = self._read.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?"
            " AND uid BETWEEN ? AND ? ORDER BY uid",
            (mailbox_id, min(wanted), max(wanted)),
        )
        return [_record(row) for row in rows if row[0] in wanted]

    def changes_since(self, mailbox_id: int, modseq: int) -> list[MessageRecord]:
        """Return the messages whose MODSEQ is greater than `modseq`."""
        rows = self._read.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?"
            " AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        )
        return [_record(row) for row in rows]

    def vanished_since(self, mailbox_id: int, modseq: int) -> list[int]:
        """Return UIDs expunged with a MODSEQ greater than `modseq`."""
        rows = self._read.execute(
            "SELECT uid FROM vanished WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        )
        return [uid for (uid,) in rows]

    def message_metas(self, blob_ids: Iterable[str]) -> dict[str, MessageAnalysis]:
        """Return the analyses of many blobs, reading the uncached ones in one query."""
        found: dict[str, MessageAnalysis] = {}
        missing: list[str] = []
        for blob_id in dict.fromkeys(blob_ids):
            cached = self._meta_cache.get(blob_id)
            if cached is None:
                missing.append(blob_id)
            else:
                found[blob_id] = cached
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for blob_id, text in self._read.execute(
                f"SELECT id, analysis FROM blobs WHERE id IN ({marks})", chunk
            ):
                meta = MessageAnalysis.from_json(text)
                self._remember_meta(blob_id, meta)
                found[blob_id] = meta
        return found

    def _remember_meta(self, blob_id: str, meta: MessageAnalysis) -> None:
        self._meta_cache[blob_id] = meta
        if len(self._meta_cache) > _META_CACHE_SIZE:
            self._meta_cache.popitem(last=False)

    def message_meta(self, blob_id: str) -> MessageAnalysis:
        """Return the analysis computed when the message was stored."""
        cached = self._meta_cache.get(blob_id)
        if cached is not None:
            self._meta_cache.move_to_end(blob_id)
            return cached
        row = self._read.execute(
            "SELECT analysis FROM blobs WHERE id = ?", (blob_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"message blob {blob_id} has no analysis")
        meta = MessageAnalysis.from_json(row[0])
        self._remember_meta(blob_id, meta)
        return meta

    # -- messages: writes ---------------------------------------------------

    @staticmethod
    def _bump_modseq(conn, mailbox_id: int) -> int:
        (modseq,) = conn.execute(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?"
            " RETURNING highestmodseq",
            (mailbox_id,),
        ).fetchone()
        return int(modseq)

    @staticmethod
    def _add_usage(conn, account_id: int, delta: int) -> None:
        if delta:
            conn.execute(
                "UPDATE accounts SET used_bytes = MAX(used_bytes + ?, 0) WHERE id = ?",
                (delta, account_id),
            )

    @staticmethod
    def _register_blob(conn, blob: BlobRef, analysis_json: str) -> None:
        # The full-text index entry is added later by the SearchIndexer.
        conn.execute(
            "INSERT OR IGNORE INTO blobs(id, size, analysis, created_at)"
            " VALUES (?, ?, ?, ?)",
            (blob.blob_id, blob.size, analysis_json, int(time.time())),
        )

    def search_document(self, blob: BlobRef, analysis: MessageAnalysis) -> SearchDocument:
        """Extract a committed blob's search text, mapping a large blob from its file."""
        if blob.data is not None:
            return build_document(blob.data, analysis)
        if blob.size <= _READ_LIMIT:
            return build_document(self.blobs.read(blob.blob_id), analysis)
        with self.blobs.open(blob.blob_id) as file, mmap.mmap(
            file.fileno(), 0, access=mmap.ACCESS_READ
        ) as mapped:
            return build_document(mapped, analysis)  # type: ignore[arg-type]

    def _insert_message(
        self, txn: Transaction, mailbox_id: int, blob: BlobRef, bits: int,
        keywords: str, stamp: tuple[int, int], check_quota: bool = False,
    ) -> tuple[int, int]:
        conn = txn.conn
        row = conn.execute(
            "UPDATE mailboxes SET uidnext = uidnext + 1,"
            " highestmodseq = highestmodseq + 1 WHERE id = ?"
            " RETURNING uidnext - 1, highestmodseq, uidvalidity, account_id",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise MailboxNotFound(f"mailbox {mailbox_id} does not exist")
        uid, modseq, uidvalidity, account_id = row
        if check_quota:
            # RFC 9208 §5.1: APPEND fails when the message exceeds the quota.
            require_fits(conn, account_id, blob.size)
        conn.execute(
            "INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords,"
            " internaldate, internaldate_tz, size, blob_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mailbox_id, uid, modseq, bits, keywords, stamp[0], stamp[1],
             blob.size, blob.blob_id),
        )
        self._add_usage(conn, account_id, blob.size)
        txn.changed.add(mailbox_id)
        return uidvalidity, uid

    def analyse_blob(self, blob: BlobRef) -> MessageAnalysis:
        """Analyse a committed blob without holding a large one in memory twice.

        Small blobs are analysed from the copy the writer kept; larger ones
        through a read-only memory map of the file.
        """
        if blob.data is not None:
            return analyse(blob.data)
        if blob.size <= _READ_LIMIT:
            return analyse(self.blobs.read(blob.blob_id))
        with self.blobs.open(blob.blob_id) as file, mmap.mmap(
            file.fileno(), 0, access=mmap.ACCESS_READ
        ) as mapped:
            return analyse(mapped)  # type: ignore[arg-type]

    async def append_chunks(
        self,
        mailbox_id: int,
        chunks: Iterable[bytes],
        flags: Iterable[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> tuple[int, int]:
        """Store a message given as chunks, with bounded memory; return (UIDVALIDITY, UID)."""
        writer = self.blobs.create()
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        blob = await writer.commit()
        return await self.append_blob(
            mailbox_id, blob, self.analyse_blob(blob), flags, internaldate
        )

    async def append(
        self,
        mailbox_id: int,
        data: bytes,
        flags: Iterable[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> tuple[int, int]:
        """Store `data` in the mailbox; return (UIDVALIDITY, UID)."""
        analysis = analyse(data)
        blob = await self.blobs.put(data)
        return await self.append_blob(mailbox_id, blob, analysis, flags, internaldate)

    async def append_blob(
        self,
        mailbox_id: int,
        blob: BlobRef,
        analysis: MessageAnalysis,
        flags: Iterable[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> tuple[int, int]:
        """Add a committed blob to the mailbox; return (UIDVALIDITY, UID)."""
        bits, keywords = flagbits.pack(set(flags))
        stamp = _stamp(internaldate)
        analysis_json = analysis.to_json()

        def job(txn: Transaction) -> tuple[int, int]:
            self._register_blob(txn.conn, blob, analysis_json)
            return self._insert_message(
                txn, mailbox_id, blob, bits, keywords, stamp, check_quota=True
            )

        return await self._writer.run(job)

    async def append_blobs(
        self,
        mailbox_id: int,
        items: Sequence[tuple[BlobRef, MessageAnalysis, Iterable[str], datetime | None]],
    ) -> tuple[int, list[int]]:
        """Add several committed blobs in one transaction; return (UIDVALIDITY, UIDs).

        RFC 3502 §3: either every message is added or none is, so one
        failure (quota, a deleted mailbox) raises and adds nothing.
        """
        rows = []
        for blob, analysis, flags, internaldate in items:
            bits, keywords = flagbits.pack(set(flags))
            rows.append((blob, analysis.to_json(), bits, keywords, _stamp(internaldate)))

        def job(txn: Transaction) -> tuple[int, list[int]]:
            uidvalidity, uids = 0, []
            for blob, analysis_json, bits, keywords, stamp in rows:
                self._register_blob(txn.conn, blob, analysis_json)
                uidvalidity, uid = self._insert_message(
                    txn, mailbox_id, blob, bits, keywords, stamp, check_quota=True
                )
                uids.append(uid)
            return uidvalidity, uids

        return await self._writer.run(job)

    async def deliver(
        self,
        account_ids: Sequence[int],
        blob: BlobRef,
        analysis: MessageAnalysis,
        internaldate: datetime | None = None,
        skip_over_quota: bool = False,
        junk_accounts: Collection[int] = (),
    ) -> dict[int, int]:
        """Put one message into the INBOX of every account, in one transaction.

        Returns the new UID per account id. Accounts without an INBOX get
        their default mailboxes first. With `skip_over_quota`, accounts that
        the message would put over their quota are left out of the
        transaction and of the result. Accounts in `junk_accounts` get the
        message in their \\Junk mailbox instead (RFC 6154), or in the INBOX
        when they have none.
        """
        return await self._writer.run(
            self.deliver_job(
                account_ids, blob, analysis, internaldate, skip_over_quota,
                junk_accounts,
            )
        )

    def deliver_job(
        self,
        account_ids: Sequence[int],
        blob: BlobRef,
        analysis: MessageAnalysis,
        internaldate: datetime | None = None,
        skip_over_quota: bool = False,
        junk_accounts: Collection[int] = (),
    ) -> Callable[[Transaction], dict[int, int]]:
        """Return the write job of `deliver`, for a caller that adds its own rows."""
        stamp = _stamp(internaldate)
        analysis_json = analysis.to_json()
        junk = set(junk_accounts)

        def job(txn: Transaction) -> dict[int, int]:
            self._register_blob(txn.conn, blob, analysis_json)
            result: dict[int, int] = {}
            for account_id in dict.fromkeys(account_ids):
                if skip_over_quota and not fits(txn.conn, account_id, blob.size):
                    continue
                if account_id in junk:
                    row = txn.conn.execute(
                        "SELECT id FROM mailboxes WHERE account_id = ?"
                        " AND special_use = ? ORDER BY id LIMIT 1",
                        (account_id, "\\Junk"),
                    ).fetchone()
                    if row is not None:
                        _, uid = self._insert_message(txn, row[0], blob, 0, "", stamp)
                        result[account_id] = uid
                        continue
                row = txn.conn.execute(
                    "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                    (account_id, INBOX),
                ).fetchone()
                if row is None:
                    self.provision_job(account_id)(txn)
                    row = txn.conn.execute(
                        "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                        (account_id, INBOX),
                    ).fetchone()
                _, uid = self._insert_message(txn, row[0], blob, 0, "", stamp)
                result[account_id] = uid
            return result

        return job

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        op: FlagOperation,
        flags: Iterable[str],
        unchanged_since: int | None = None,
        modified: list[int] | None = None,
    ) -> list[MessageRecord]:
        """Change flags; return the records that changed, with their new MODSEQ.

        With `unchanged_since` (RFC 7162 §3.1.3), messages whose MODSEQ is
        greater are left alone, and their UIDs are appended to `modified`
        when it is given.
        """
        bits, keywords = flagbits.pack(set(flags))
        keyword_set = set(keywords.split()) if keywords else set()
        wanted = sorted(set(uids))

        def job(txn: Transaction) -> list[MessageRecord]:
            conn = txn.conn
            changed: list[tuple[int, int, str]] = []
            for chunk_start in range(0, len(wanted), 500):
                chunk = wanted[chunk_start : chunk_start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT uid, flags, keywords, modseq FROM messages"
                    f" WHERE mailbox_id = ? AND uid IN ({marks})",
                    (mailbox_id, *chunk),
                ).fetchall()
                for uid, old_bits, old_keywords, modseq in rows:
                    if unchanged_since is not None and modseq > unchanged_since:
                        if modified is not None:
                            modified.append(uid)
                        continue
                    old_set = set(old_keywords.split()) if old_keywords else set()
                    if op == "add":
                        new_bits, new_set = old_bits | bits, old_set | keyword_set
                    elif op == "remove":
                        new_bits, new_set = old_bits & ~bits, old_set - keyword_set
                    else:
                        new_bits, new_set = bits, keyword_set
                    if new_bits != old_bits or new_set != old_set:
                        changed.append((uid, new_bits, " ".join(sorted(new_set))))
            if not changed:
                return []
            modseq = self._bump_modseq(conn, mailbox_id)
            conn.executemany(
                "UPDATE messages SET flags = ?, keywords = ?, modseq = ?"
                " WHERE mailbox_id = ? AND uid = ?",
                [(b, k, modseq, mailbox_id, uid) for uid, b, k in changed],
            )
            txn.changed.add(mailbox_id)
            return [
                _record(row)
                for row in conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ?"
                    " AND modseq = ? ORDER BY uid",
                    (mailbox_id, modseq),
                )
            ]

        return await self._writer.run(job)

    def _remove_rows(self, txn: Transaction, mailbox_id: int, uids: list[int]) -> None:
        if not uids:
            return
        conn = txn.conn
        modseq = self._bump_modseq(conn, mailbox_id)
        (account_id,) = conn.execute(
            "SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)
        ).fetchone()
        freed = 0
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            freed += conn.execute(
                f"SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = ?"
                f" AND uid IN ({marks})",
                (mailbox_id, *chunk),
            ).fetchone()[0]
            conn.execute(
                f"DELETE FROM messages WHERE mailbox_id = ? AND uid IN ({marks})",
                (mailbox_id, *chunk),
            )
        conn.executemany(
            "INSERT OR REPLACE INTO vanished(mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid in uids],
        )
        self._add_usage(conn, account_id, -freed)
        txn.changed.add(mailbox_id)

    async def expunge(
        self, mailbox_id: int, uids: Iterable[int] | None = None
    ) -> list[int]:
        """Remove the messages flagged \\Deleted (only among `uids` if given)."""
        restrict = None if uids is None else set(uids)

        def job(txn: Transaction) -> list[int]:
            rows = txn.conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? AND (flags & ?) != 0"
                " ORDER BY uid",
                (mailbox_id, flagbits.DELETED),
            )
            gone = [uid for (uid,) in rows if restrict is None or uid in restrict]
            self._remove_rows(txn, mailbox_id, gone)
            return gone

        return await self._writer.run(job)

    def _copy_rows(
        self, txn: Transaction, source: int, uids: Sequence[int], target: int,
        remove: bool,
    ) -> list[tuple[int, int]]:
        conn = txn.conn
        wanted = set(uids)
        rows = [
            row for row in conn.execute(
                "SELECT uid, flags, keywords, internaldate, internaldate_tz, size,"
                " blob_id FROM messages WHERE mailbox_id = ? ORDER BY uid",
                (source,),
            )
            if row[0] in wanted
        ]
        if not rows:
            return []
        uidnext, account_id = conn.execute(
            "SELECT uidnext, account_id FROM mailboxes WHERE id = ?", (target,)
        ).fetchone()
        if not remove:
            # RFC 9208 §5.1: COPY fails when the copies exceed the quota. A
            # move stays within one account, so its usage does not change.
            require_fits(conn, account_id, sum(row[5] for row in rows))
        modseq = self._bump_modseq(conn, target)
        pairs: list[tuple[int, int]] = []
        inserts = []
        for offset, (uid, bits, keywords, stamp, tz, size, blob_id) in enumerate(rows):
            new_uid = uidnext + offset
            pairs.append((uid, new_uid))
            inserts.append((target, new_uid, modseq, bits, keywords, stamp, tz, size, blob_id))
        conn.executemany(
            "INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords,"
            " internaldate, internaldate_tz, size, blob_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            inserts,
        )
        conn.execute(
            "UPDATE mailboxes SET uidnext = ? WHERE id = ?", (uidnext + len(rows), target)
        )
        self._add_usage(conn, account_id, sum(row[5] for row in rows))
        txn.changed.add(target)
        if remove:
            self._remove_rows(txn, source, [uid for uid, _ in pairs])
        return pairs

    async def copy(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy messages; return (source UID, new UID) pairs in UID order."""
        wanted = sorted(set(uids))
        return await self._writer.run(
            lambda txn: self._copy_rows(txn, mailbox_id, wanted, dest_mailbox_id, False)
        )

    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Move messages atomically (RFC 6851); return (source UID, new UID) pairs."""
        if mailbox_id == dest_mailbox_id:
            raise StoreError("source and destination mailbox are the same")
        wanted = sorted(set(uids))
        return await self._writer.run(
            lambda txn: self._copy_rows(txn, mailbox_id, wanted, dest_mailbox_id, True)
        )

    def quota_usage(self, account_id: int) -> QuotaUsage:
        """Return the account's storage usage, quota and message count."""
        return read_usage(self._read, account_id)

    def account_usage(self, account_id: int) -> int:
        """Return the bytes stored for the account."""
        row = self._read.execute(
            "SELECT used_bytes FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    async def write(self, job: Callable[[Transaction], object]) -> object:
        """Run a write job in the next group commit (for services over the store)."""
        return await self._writer.run(job)
