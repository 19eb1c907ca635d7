"""Garbage collection of message files that nothing uses any more."""

from __future__ import annotations

import os
import time

from garrison.delivery.pipeline import Envelope, Recipient
from garrison.server.runner import BLOB_REFERRERS
from garrison.server.services import Services
from garrison.store.gc import BlobCollector
from garrison.store.indexer import SearchIndexer
from tests.store.test_indexer import inbox_id, message

DAY = 86400.0


def age(services: Services, blob_id: str, seconds: float = 2 * DAY) -> None:
    """Set the file's modification time `seconds` into the past."""
    then = time.time() - seconds
    os.utime(services.store.blobs.path(blob_id), (then, then))


def collector(services: Services) -> BlobCollector:
    return BlobCollector(services.store, referrers=BLOB_REFERRERS, grace=DAY)


def blob_row(services: Services, blob_id: str) -> tuple | None:
    return services.store._read.execute(
        "SELECT id FROM blobs WHERE id = ?", (blob_id,)
    ).fetchone()


async def test_unused_old_blob_removed(services: Services) -> None:
    store = services.store
    box = inbox_id(services)
    await store.append(box, message("kept", b"still in a mailbox"))
    [kept] = store.messages(box)
    orphan = await store.blobs.put(b"Subject: orphan\r\n\r\nno message uses this\r\n")
    age(services, kept.blob_id)
    age(services, orphan.blob_id)

    result = await collector(services).collect()

    assert result.removed == 1
    assert result.freed_bytes == orphan.size
    assert not store.blobs.path(orphan.blob_id).exists()
    assert store.blobs.path(kept.blob_id).exists()
    assert store.blobs.read(kept.blob_id).endswith(b"still in a mailbox\r\n")


async def test_fresh_unused_blob_kept(services: Services) -> None:
    store = services.store
    orphan = await store.blobs.put(b"Subject: new\r\n\r\nin flight\r\n")
    result = await collector(services).collect()
    assert result.removed == 0
    assert store.blobs.path(orphan.blob_id).exists()


async def test_expunged_message_file_and_index_removed(services: Services) -> None:
    store = services.store
    box = inbox_id(services)
    await store.append(box, message("gone", "要删除的邮件".encode()))
    [record] = store.messages(box)
    indexer = SearchIndexer(store)
    await indexer.index_pending()
    await store.store_flags(box, [record.uid], "add", ["\\Deleted"])
    await store.expunge(box)
    age(services, record.blob_id)

    result = await collector(services).collect()

    assert result.removed == 1
    assert blob_row(services, record.blob_id) is None
    docs = store._read.execute(
        "SELECT COUNT(*) FROM search_docs WHERE blob_id = ?", (record.blob_id,)
    ).fetchone()
    assert docs == (0,)
    assert not store.blobs.path(record.blob_id).exists()


async def test_queued_and_quarantined_blobs_kept(services: Services) -> None:
    store = services.store
    queued = await store.blobs.put(b"Subject: queued\r\n\r\nfor later\r\n")
    quarantined = await store.blobs.put(b"Subject: held\r\n\r\nin quarantine\r\n")

    def job(txn) -> None:
        txn.conn.execute(
            "INSERT INTO quarantine(blob_id, size, sender, params, recipients,"
            " reason, queue_id, created_at) VALUES (?, ?, '', '{}', '[]', 'test', 'Q1', 0)",
            (quarantined.blob_id, quarantined.size),
        )

    await store.write(job)
    await services.queue.enqueue(
        Envelope("Q2", "s@example.org", [Recipient("r@remote.example", [])]), queued
    )
    age(services, queued.blob_id)
    age(services, quarantined.blob_id)

    result = await collector(services).collect()

    assert result.removed == 0
    assert store.blobs.path(queued.blob_id).exists()
    assert store.blobs.path(quarantined.blob_id).exists()


async def test_reused_content_refreshes_file(services: Services) -> None:
    store = services.store
    data = b"Subject: twice\r\n\r\nthe same bytes again\r\n"
    first = await store.blobs.put(data)
    age(services, first.blob_id)
    # The same content arrives again: the file is reused and becomes fresh.
    again = await store.blobs.put(data)
    assert again.blob_id == first.blob_id

    result = await collector(services).collect()

    assert result.removed == 0
    assert store.blobs.read(first.blob_id) == data


async def test_file_reused_during_removal_put_back(services: Services) -> None:
    store = services.store
    orphan = await store.blobs.put(
        b"Subject: race\r\n\r\nreused at the last moment\r\n"
    )
    age(services, orphan.blob_id)
    gc = collector(services)
    cutoff = time.time() - DAY
    # A delivery refreshes the file between the check and the removal.
    os.utime(store.blobs.path(orphan.blob_id))
    assert gc._remove_file(orphan.blob_id, cutoff) is False
    assert store.blobs.path(orphan.blob_id).exists()


async def test_file_set_aside_by_crash_restored(services: Services) -> None:
    store = services.store
    orphan = await store.blobs.put(b"Subject: crash\r\n\r\nset aside\r\n")
    path = store.blobs.path(orphan.blob_id)
    os.rename(path, store.blobs.spool_dir / f"{orphan.blob_id}.123.gc")
    store.blobs.cleanup_spool()
    assert path.exists()
    assert list(store.blobs.spool_dir.glob("*.gc")) == []
