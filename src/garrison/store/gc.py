"""Garbage collection of message blobs that nothing refers to any more.

Blobs outlive their messages: an expunged message, a removed account, a
message whose content the delivery pipeline rewrote (to add
Authentication-Results) or a transaction rejected after its data was
committed all leave a blob file behind. `BlobCollector.collect()` removes
the files, their `blobs` rows and their full-text index entries.

A blob is removed only when two things hold:

- no referring table names it (`messages.blob_id` and the columns the
  caller lists, such as the outbound queue's and the quarantine's), checked
  again inside the write transaction that deletes its rows, and
- its file was last written or reused more than `grace` seconds ago.

The second rule protects a delivery in flight, whose blob is committed to
disk before the transaction that refers to it. When identical content
arrives again, the blob store refreshes the file's modification time
instead of writing it anew (`BlobStore._install`). The grace period must
therefore exceed the longest time between committing a blob and
committing the rows that use it. The default of a day is far beyond the
timeouts of SMTP, IMAP APPEND and the checks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from garrison.observability.log import event
from garrison.store.service import MailStore
from garrison.store.writer import Transaction

log = logging.getLogger("garrison.store")

DEFAULT_GRACE = 86400.0
_BATCH = 500


@dataclass(slots=True)
class CollectResult:
    """The counts of one collection pass."""

    scanned: int = 0
    removed: int = 0
    freed_bytes: int = 0


class BlobCollector:
    """Removes unreferenced blob files older than the grace period."""

    def __init__(
        self,
        store: MailStore,
        referrers: Sequence[tuple[str, str]] = (),
        grace: float = DEFAULT_GRACE,
        interval: float = 3600.0,
    ) -> None:
        """`referrers` lists (table, column) pairs besides `messages.blob_id`."""
        self.store = store
        self.referrers = [("messages", "blob_id"), *referrers]
        self.grace = grace
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="blob-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.collect()
            except Exception:
                log.exception("event=blob_gc_failed")

    async def collect(self, now: float | None = None) -> CollectResult:
        """Remove every unreferenced blob older than the grace period."""
        cutoff = (time.time() if now is None else now) - self.grace
        result = CollectResult()
        batch: list[tuple[str, int]] = []
        old = await asyncio.to_thread(lambda: list(self._old_files(cutoff, result)))
        for blob_id, size in old:
            batch.append((blob_id, size))
            if len(batch) >= _BATCH:
                await self._collect_batch(batch, cutoff, result)
                batch = []
        if batch:
            await self._collect_batch(batch, cutoff, result)
        event(
            log,
            "blob_gc",
            scanned=result.scanned,
            removed=result.removed,
            freed_bytes=result.freed_bytes,
        )
        return result

    def _old_files(
        self, cutoff: float, result: CollectResult
    ) -> Iterator[tuple[str, int]]:
        root = self.store.blobs.blob_dir
        for first in sorted(os.scandir(root), key=lambda entry: entry.name):
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in os.scandir(first.path):
                if not second.is_dir():
                    continue
                for entry in os.scandir(second.path):
                    if len(entry.name) != 64:
                        continue
                    result.scanned += 1
                    stat = entry.stat()
                    if stat.st_mtime < cutoff:
                        yield entry.name, stat.st_size

    async def _collect_batch(
        self, batch: list[tuple[str, int]], cutoff: float, result: CollectResult
    ) -> None:
        sizes = dict(batch)

        def job(txn: Transaction) -> list[str]:
            conn = txn.conn
            unused = set(sizes)
            marks = ",".join("?" * len(sizes))
            for table, column in self.referrers:
                rows = conn.execute(
                    f"SELECT DISTINCT {column} FROM {table} WHERE {column} IN ({marks})",
                    list(sizes),
                ).fetchall()
                unused -= {row[0] for row in rows}
            # A file reused since the scan is in flight again: keep it.
            unused = {blob_id for blob_id in unused if self._still_old(blob_id, cutoff)}
            for blob_id in unused:
                doc = conn.execute(
                    "SELECT id FROM search_docs WHERE blob_id = ?", (blob_id,)
                ).fetchone()
                if doc is not None:
                    conn.execute("DELETE FROM search_text WHERE rowid = ?", (doc[0],))
                    conn.execute("DELETE FROM search_docs WHERE id = ?", (doc[0],))
                conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
            return sorted(unused)

        removed = await self.store.write(job)
        for blob_id in removed:
            if await asyncio.to_thread(self._remove_file, blob_id, cutoff):
                result.removed += 1
                result.freed_bytes += sizes[blob_id]

    def _remove_file(self, blob_id: str, cutoff: float) -> bool:
        """Remove the blob's file unless a delivery reused it meanwhile.

        The file is first renamed away, which is atomic. A writer that
        refreshes it before the rename leaves a new modification time, so
        the file is put back. A writer that comes after finds no file and
        writes it anew. The content is addressed by its hash, so a file put
        back over a rewritten one has the same bytes.
        """
        target = self.store.blobs.path(blob_id)
        trash = self.store.blobs.spool_dir / f"{blob_id}.{os.getpid()}.gc"
        try:
            os.rename(target, trash)
        except FileNotFoundError:
            return False
        if os.stat(trash).st_mtime >= cutoff:
            os.replace(trash, target)
            return False
        os.unlink(trash)
        return True

    def _still_old(self, blob_id: str, cutoff: float) -> bool:
        try:
            return os.stat(self.store.blobs.path(blob_id)).st_mtime < cutoff
        except FileNotFoundError:
            return False
