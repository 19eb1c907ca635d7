import asyncio

from garrison.server.services import Services
from garrison.store.indexer import SearchIndexer

ALICE = "alice@example.test"


def inbox_id(services: Services) -> int:
    account = services.directory.get_account(ALICE)
    assert account is not None
    mailbox = services.store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    return mailbox.id


def message(subject: str, body: bytes, charset: str = "utf-8") -> bytes:
    return (
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n\r\n"
    ).encode() + body + b"\r\n"


async def test_indexer_indexes_stored_messages(services: Services) -> None:
    store = services.store
    box = inbox_id(services)
    await store.append(box, message("report", "季度报告已经完成".encode("gb18030"), "gb2312"))
    await store.append(box, message("other", b"nothing to see"))
    assert store.fulltext.unindexed_blobs(box) != set()

    indexer = SearchIndexer(store)
    assert await indexer.index_pending() == 2
    assert store.fulltext.unindexed_blobs(box) == set()
    [record] = store.messages(box, [1])
    assert store.fulltext.matching_blobs(box, ["body"], "报告已") == {record.blob_id}
    assert store.fulltext.matching_blobs(box, ["body"], "REPORT") == set()
    assert store.fulltext.matching_blobs(box, ["subject"], "REPORT") == {record.blob_id}
    assert await indexer.index_pending() == 0


async def test_index_candidates_are_confirmed_as_substrings(services: Services) -> None:
    # Without token positions the index returns every message holding the
    # trigrams "abc" and "bcd"; only one holds the substring "abcd".
    store = services.store
    box = inbox_id(services)
    await store.append(box, message("x", b"xx abcd xx"))
    await store.append(box, message("y", b"abc then bcd apart"))
    await SearchIndexer(store).index_pending()
    [first] = store.messages(box, [1])
    assert store.fulltext.matching_blobs(box, ["body"], "abcd") == {first.blob_id}


async def test_indexer_wakes_after_commits(services: Services) -> None:
    store = services.store
    box = inbox_id(services)
    indexer = SearchIndexer(store, delay=0.05, interval=30)
    indexer.start()
    try:
        await store.append(box, message("wake", b"indexed in the background"))
        for _ in range(100):
            if not store.fulltext.unindexed_blobs(box):
                break
            await asyncio.sleep(0.05)
        assert store.fulltext.unindexed_blobs(box) == set()
    finally:
        await indexer.stop()


async def test_unreadable_blob_is_skipped_not_retried(services: Services) -> None:
    store = services.store
    box = inbox_id(services)
    await store.append(box, message("gone", b"file removed"))
    [record] = store.messages(box)
    store.blobs.path(record.blob_id).unlink()
    indexer = SearchIndexer(store)
    assert await indexer.index_pending() == 1
    assert store.fulltext.unindexed_blobs(box) == {record.blob_id}
    assert await indexer.index_pending() == 0
