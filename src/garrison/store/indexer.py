"""Background full-text indexing of stored messages.

Indexing a 10 KiB message costs about as much as storing it, so it runs
after delivery instead of inside the transaction that the SMTP `250` or
the IMAP `OK` waits for. One process per database runs the indexer (the
worker that also runs the queue scheduler). It wakes after local commits,
waits briefly so that one batch covers many messages, and every
`interval` seconds to catch commits made by other processes. A message is
searchable before it is indexed: searches scan the messages that have no
index entry yet.
"""

from __future__ import annotations

import asyncio
import logging

from garrison.message import MessageAnalysis
from garrison.observability.log import event
from garrison.store.blobs import BlobRef
from garrison.store.fulltext import SearchDocument, index_document
from garrison.store.service import MailStore

log = logging.getLogger("garrison.store")


class SearchIndexer:
    """Adds the search text of newly stored messages to the index, in batches."""

    def __init__(
        self,
        store: MailStore,
        batch_size: int = 200,
        delay: float = 0.5,
        interval: float = 5.0,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.delay = delay
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_rowid = 0
        self._failed: set[str] = set()

    def start(self) -> None:
        self.store.add_commit_listener(self._on_commit)
        self._task = asyncio.create_task(self._run(), name="search-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _on_commit(self, mailbox_ids: set[int]) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await asyncio.sleep(self.delay)
            try:
                while await self.index_pending() == self.batch_size:
                    pass
            except Exception:
                log.exception("event=index_failed")

    def _pending(self) -> list[tuple[int, str, int, str]]:
        # Blobs that some mailbox refers to and that have no index entry, in
        # insertion order from where the previous pass stopped.
        return self.store._read.execute(
            "SELECT b.rowid, b.id, b.size, b.analysis FROM blobs AS b"
            " WHERE b.rowid > ?"
            " AND NOT EXISTS (SELECT 1 FROM search_docs AS d WHERE d.blob_id = b.id)"
            " AND EXISTS (SELECT 1 FROM messages AS m WHERE m.blob_id = b.id)"
            " ORDER BY b.rowid LIMIT ?",
            (self._last_rowid, self.batch_size),
        ).fetchall()

    async def index_pending(self) -> int:
        """Index one batch of unindexed messages; return how many were examined."""
        rows = self._pending()
        documents: list[tuple[str, SearchDocument]] = []
        for rowid, blob_id, size, analysis_json in rows:
            self._last_rowid = max(self._last_rowid, rowid)
            if blob_id in self._failed:
                continue
            try:
                analysis = MessageAnalysis.from_json(analysis_json)
                document = self.store.search_document(BlobRef(blob_id, size), analysis)
            except (OSError, ValueError) as exc:
                # The message stays searchable by scanning; do not retry it.
                self._failed.add(blob_id)
                event(log, "index_skipped", logging.WARNING, blob=blob_id, error=exc)
                continue
            documents.append((blob_id, document))
            # Extraction is CPU work on the event loop; let sessions run.
            await asyncio.sleep(0)
        if documents:

            def job(txn) -> None:
                for blob_id, document in documents:
                    index_document(txn.conn, blob_id, document)

            await self.store.write(job)
        return len(rows)
