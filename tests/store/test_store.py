import asyncio
import sqlite3

import pytest

from garrison.server.services import Services
from garrison.store import INBOX, MailboxExists, MailboxNotFound, StoreError

ALICE = "alice@example.test"
BOB = "bob@example.test"

MESSAGE = b"From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n"


def account_id(services: Services, address: str) -> int:
    account = services.directory.get_account(address)
    assert account is not None
    return account.id


def inbox(services: Services, address: str = ALICE):
    mailbox = services.store.get_mailbox(account_id(services, address), "inbox")
    assert mailbox is not None
    return mailbox


async def test_new_account_has_special_use_mailboxes(services: Services) -> None:
    boxes = services.store.list_mailboxes(account_id(services, ALICE))
    by_name = {box.name: box for box in boxes}
    assert set(by_name) == {INBOX, "Sent", "Drafts", "Trash", "Junk", "Archive"}
    assert by_name["Sent"].special_use == "\\Sent"
    assert by_name["Junk"].subscribed


async def test_deliver_to_two_accounts_in_one_commit(services: Services) -> None:
    store = services.store
    blob = await store.blobs.put(MESSAGE)
    analysis = services.store.analyse_blob(blob)
    uids = await store.deliver(
        [account_id(services, ALICE), account_id(services, BOB)], blob, analysis
    )
    assert set(uids.values()) == {1}
    for address in (ALICE, BOB):
        records = store.messages(inbox(services, address).id)
        assert [r.uid for r in records] == [1]
        assert records[0].blob_id == blob.blob_id
        assert store.blobs.read(records[0].blob_id) == MESSAGE


async def test_uids_and_modseqs_only_increase(services: Services) -> None:
    store = services.store
    box = inbox(services)
    results = [await store.append(box.id, MESSAGE + str(i).encode()) for i in range(5)]
    assert [uid for _, uid in results] == [1, 2, 3, 4, 5]
    await store.store_flags(box.id, [5], "add", ["\\Deleted"])
    await store.expunge(box.id)
    _, uid = await store.append(box.id, MESSAGE)
    assert uid == 6
    modseqs = [r.modseq for r in store.messages(box.id)]
    assert modseqs == sorted(modseqs)
    assert store.status(box.id).highestmodseq >= max(modseqs)


async def test_flag_operations(services: Services) -> None:
    store = services.store
    box = inbox(services)
    await store.append(box.id, MESSAGE, flags=["\\Seen", "$Label1"])
    before = store.status(box.id).highestmodseq

    changed = await store.store_flags(box.id, [1], "add", ["\\Flagged", "$Junk"])
    assert changed[0].flags == {"\\Seen", "\\Flagged", "$Label1", "$Junk"}
    assert changed[0].modseq > before

    changed = await store.store_flags(box.id, [1], "remove", ["\\Seen", "$Label1"])
    assert changed[0].flags == {"\\Flagged", "$Junk"}

    changed = await store.store_flags(box.id, [1], "replace", ["\\Draft"])
    assert changed[0].flags == {"\\Draft"}

    assert await store.store_flags(box.id, [1], "add", ["\\Draft"]) == []
    assert [r.uid for r in store.changes_since(box.id, before)] == [1]
    assert store.changes_since(box.id, changed[0].modseq) == []


async def test_unchanged_since_skips_newer_messages(services: Services) -> None:
    store = services.store
    box = inbox(services)
    await store.append(box.id, MESSAGE)
    await store.append(box.id, MESSAGE + b"2")
    first = store.messages(box.id)[0].modseq
    changed = await store.store_flags(box.id, [1, 2], "add", ["\\Seen"], unchanged_since=first)
    assert [r.uid for r in changed] == [1]


async def test_expunge_only_deleted_and_records_vanished(services: Services) -> None:
    store = services.store
    box = inbox(services)
    for i in range(4):
        await store.append(box.id, MESSAGE + str(i).encode())
    modseq = store.status(box.id).highestmodseq
    await store.store_flags(box.id, [1, 2, 3], "add", ["\\Deleted"])
    assert await store.expunge(box.id, uids=[2, 3, 4]) == [2, 3]
    assert store.uids(box.id) == [1, 4]
    assert store.vanished_since(box.id, modseq) == [2, 3]
    assert await store.expunge(box.id) == [1]


async def test_copy_and_move_return_uid_pairs(services: Services) -> None:
    store = services.store
    alice = account_id(services, ALICE)
    box = inbox(services)
    trash = store.get_mailbox(alice, "Trash")
    assert trash is not None
    for i in range(3):
        await store.append(box.id, MESSAGE + str(i).encode(), flags=["\\Seen"])
    assert await store.copy(box.id, [1, 3], trash.id) == [(1, 1), (3, 2)]
    assert await store.move(box.id, [2, 3], trash.id) == [(2, 3), (3, 4)]
    assert store.uids(box.id) == [1]
    assert store.uids(trash.id) == [1, 2, 3, 4]
    assert all(r.flags == {"\\Seen"} for r in store.messages(trash.id))
    with pytest.raises(StoreError):
        await store.move(box.id, [1], box.id)


async def test_quota_usage_follows_messages(services: Services) -> None:
    store = services.store
    alice = account_id(services, ALICE)
    box = inbox(services)
    start = store.account_usage(alice)
    await store.append(box.id, MESSAGE)
    assert store.account_usage(alice) == start + len(MESSAGE)
    await store.store_flags(box.id, [1], "add", ["\\Deleted"])
    await store.expunge(box.id)
    assert store.account_usage(alice) == start


async def test_mailbox_lifecycle(services: Services) -> None:
    store = services.store
    alice = account_id(services, ALICE)
    created = await store.create_mailbox(alice, "Projects/2026")
    with pytest.raises(MailboxExists):
        await store.create_mailbox(alice, "Projects/2026")
    await store.create_mailbox(alice, "Projects")
    await store.append(created.id, MESSAGE)
    await store.rename_mailbox(alice, "Projects", "Work")
    renamed = store.get_mailbox(alice, "Work/2026")
    assert renamed is not None
    assert renamed.id == created.id
    assert store.uids(renamed.id) == [1]
    await store.delete_mailbox(alice, "Work/2026")
    assert store.get_mailbox(alice, "Work/2026") is None
    with pytest.raises(MailboxNotFound):
        await store.delete_mailbox(alice, "Work/2026")
    with pytest.raises(StoreError):
        await store.delete_mailbox(alice, "inbox")
    for bad in ("", "/lead", "trail/", "a//b", "tab\there"):
        with pytest.raises(StoreError):
            await store.create_mailbox(alice, bad)


async def test_recreated_mailbox_gets_new_uidvalidity(services: Services) -> None:
    store = services.store
    alice = account_id(services, ALICE)
    first = await store.create_mailbox(alice, "Temp")
    await store.delete_mailbox(alice, "Temp")
    second = await store.create_mailbox(alice, "Temp")
    assert second.uidvalidity > first.uidvalidity


async def test_rename_inbox_moves_messages(services: Services) -> None:
    store = services.store
    alice = account_id(services, ALICE)
    box = inbox(services)
    await store.append(box.id, MESSAGE)
    await store.rename_mailbox(alice, "INBOX", "Old mail")
    old = store.get_mailbox(alice, "Old mail")
    assert old is not None
    assert store.uids(old.id) == [1]
    assert store.uids(box.id) == []
    assert store.get_mailbox(alice, "INBOX") is not None


async def test_subscriptions_need_no_mailbox(services: Services) -> None:
    store = services.store
    alice = account_id(services, ALICE)
    await store.set_subscribed(alice, "Not/There", True)
    assert "Not/There" in store.subscriptions(alice)
    await store.set_subscribed(alice, "Not/There", False)
    assert "Not/There" not in store.subscriptions(alice)


async def test_change_callback_runs_after_commit(services: Services) -> None:
    store = services.store
    box = inbox(services)
    seen: list[int] = []

    def on_change() -> None:
        seen.append(len(store.uids(box.id)))

    store.subscribe(box.id, on_change)
    await store.append(box.id, MESSAGE)
    assert seen == [1]
    store.unsubscribe(box.id, on_change)
    await store.append(box.id, MESSAGE + b"x")
    assert seen == [1]


async def test_concurrent_writes_share_commits(services: Services) -> None:
    store = services.store
    box = inbox(services)
    commits_before = store._writer.commits
    results = await asyncio.gather(
        *(store.append(box.id, MESSAGE + str(i).encode()) for i in range(200))
    )
    assert sorted(uid for _, uid in results) == list(range(1, 201))
    assert store._writer.commits - commits_before < 200
    conn = sqlite3.connect(services.settings.db_path)
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM messages WHERE mailbox_id = ?", (box.id,)
    ).fetchone()
    conn.close()
    assert count == 200


async def test_failed_job_leaves_batch_intact(services: Services) -> None:
    store = services.store
    box = inbox(services)
    ok_first = store.append(box.id, MESSAGE)
    failing = store.append(999999, MESSAGE + b"lost")
    ok_second = store.append(box.id, MESSAGE + b"2")
    results = await asyncio.gather(ok_first, failing, ok_second, return_exceptions=True)
    assert isinstance(results[1], MailboxNotFound)
    assert store.uids(box.id) == [1, 2]


async def test_identical_messages_share_one_blob(services: Services) -> None:
    store = services.store
    first = await store.blobs.put(MESSAGE)
    second = await store.blobs.put(MESSAGE)
    assert first == second
    assert list(store.blobs.spool_dir.iterdir()) == []


async def test_aborted_blob_leaves_nothing(services: Services) -> None:
    store = services.store
    writer = store.blobs.create()
    writer.write(b"partial")
    writer.abort()
    writer.abort()
    assert list(store.blobs.spool_dir.iterdir()) == []
    assert not any(p.is_file() for p in store.blobs.blob_dir.rglob("*"))


async def test_large_blob_analysis_matches_in_memory(services: Services) -> None:
    from garrison.message import analyse

    part = b"--b\r\nContent-Type: text/plain\r\n\r\n" + b"line of text\r\n" * 200_000
    data = (
        b"Subject: big\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + part * 3
        + b"--b--\r\n"
    )
    assert len(data) > 5 * 1024 * 1024
    blob = await services.store.blobs.put(data)
    assert blob.data is None
    mapped = services.store.analyse_blob(blob)
    assert mapped == analyse(data)
    assert mapped.bodystructure.startswith(b'(("text" "plain"')
