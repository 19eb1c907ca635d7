"""TRANSACTION state: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT."""

from __future__ import annotations

import os

from garrison.pop3 import replies
from garrison.pop3.maildrop import unique_id
from tests.pop3.conftest import ALICE, BOB, PASSWORD, RunningPOP3, message


async def deliver_three(pop3: RunningPOP3) -> list[bytes]:
    messages = [message("one"), message("two", "a\r\nb\r\n"), message("three")]
    for data in messages:
        await pop3.deliver(data)
    return messages


async def test_stat_counts_messages_and_octets(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    client = await pop3.login()
    total = sum(len(data) for data in messages)
    assert await client.ok("STAT") == replies.STAT.format(count=3, octets=total)
    await client.close()


async def test_stat_empty_maildrop(pop3: RunningPOP3) -> None:
    client = await pop3.login()
    assert await client.ok("STAT") == "+OK 0 0"
    await client.close()


async def test_list_all_and_one(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    client = await pop3.login()
    _, lines = await client.multiline("LIST")
    assert lines == [f"{n} {len(data)}" for n, data in enumerate(messages, start=1)]
    assert await client.ok("LIST 2") == f"+OK 2 {len(messages[1])}"
    await client.close()


async def test_list_errors(pop3: RunningPOP3) -> None:
    await deliver_three(pop3)
    client = await pop3.login()
    assert await client.err("LIST 4") == replies.NO_SUCH_MESSAGE.format(number=4)
    await client.err("LIST 0")
    await client.err("LIST x")
    await client.err("LIST 1 2")
    await client.close()


async def test_uidl_agrees_with_imap_uids(pop3: RunningPOP3) -> None:
    uids = [await pop3.deliver(message(f"m{n}")) for n in range(3)]
    mailbox = pop3.services.store.mailbox_by_id(pop3.inbox_id())
    expected = [unique_id(mailbox.uidvalidity, uid) for uid in uids]

    client = await pop3.login()
    _, lines = await client.multiline("UIDL")
    assert lines == [f"{n} {uid}" for n, uid in enumerate(expected, start=1)]
    assert await client.ok("UIDL 3") == f"+OK 3 {expected[2]}"
    await client.close()


async def test_uidl_stable_across_sessions(pop3: RunningPOP3) -> None:
    await deliver_three(pop3)
    first = await pop3.login()
    await first.ok("DELE 1")
    _, before = await first.multiline("UIDL")
    await first.ok("QUIT")

    second = await pop3.login()
    _, after = await second.multiline("UIDL")
    # Message numbers shift after the expunge; the unique-ids do not.
    assert [line.split()[1] for line in after] == [line.split()[1] for line in before]
    await second.close()


async def test_retr_returns_exact_bytes(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    client = await pop3.login()
    reply = await client.ok("RETR 2")
    assert reply == replies.RETR_FOLLOWS.format(size=len(messages[1]))
    assert await client.read_body() == messages[1]
    await client.close()


async def test_retr_byte_stuffs_dot_lines(pop3: RunningPOP3) -> None:
    data = message("dots", ".\r\n..\r\n.leading\r\nmiddle.\r\n")
    await pop3.deliver(data)
    client = await pop3.login()
    await client.ok("RETR 1")
    raw = await client.reader.readuntil(b"\r\n.\r\n")
    assert b"\r\n..\r\n...\r\n..leading\r\nmiddle.\r\n.\r\n" in raw
    await client.ok("NOOP")
    await client.close()


async def test_retr_large_message_streams_whole(pop3: RunningPOP3) -> None:
    # 3 MiB of base64-like lines, with some lines starting with a dot.
    lines = []
    for n in range(40000):
        lines.append((b"." if n % 97 == 0 else b"") + os.urandom(38).hex().encode())
    data = message("large").rstrip(b"Hello.\r\n") + b"\r\n".join(lines) + b"\r\n"
    await pop3.deliver(data)
    client = await pop3.login()
    await client.ok("RETR 1")
    assert await client.read_body() == data
    await client.close()


async def test_retr_bare_lf_message_gets_crlf(pop3: RunningPOP3) -> None:
    await pop3.deliver(b"Subject: lf\n\nline\n.dot\n")
    client = await pop3.login()
    await client.ok("RETR 1")
    assert await client.read_body() == b"Subject: lf\r\n\r\nline\r\n.dot\r\n"
    await client.close()


async def test_retr_message_removed_by_other_session(pop3: RunningPOP3) -> None:
    uid = await pop3.deliver(message("gone"))
    client = await pop3.login()
    store = pop3.services.store
    await store.store_flags(pop3.inbox_id(), [uid], "add", {"\\Deleted"})
    await store.expunge(pop3.inbox_id())

    assert await client.err("RETR 1") == replies.MESSAGE_EXPUNGED.format(number=1)
    assert await client.err("TOP 1 0") == replies.MESSAGE_EXPUNGED.format(number=1)
    # DELE of the removed message and QUIT still succeed.
    await client.ok("DELE 1")
    await client.ok("QUIT")
    assert await client.at_eof()


async def test_top_header_and_body_lines(pop3: RunningPOP3) -> None:
    data = message("top", "line 1\r\n.line 2\r\nline 3\r\n")
    await pop3.deliver(data)
    header, _, _ = data.partition(b"\r\n\r\n")
    client = await pop3.login()

    assert await client.ok("TOP 1 0") == replies.TOP_FOLLOWS
    assert await client.read_body() == header + b"\r\n\r\n"

    await client.ok("TOP 1 2")
    assert await client.read_body() == header + b"\r\n\r\nline 1\r\n.line 2\r\n"

    await client.ok("TOP 1 99")
    assert await client.read_body() == data
    await client.close()


async def test_top_argument_errors(pop3: RunningPOP3) -> None:
    await pop3.deliver(message("top"))
    client = await pop3.login()
    await client.err("TOP 1")
    await client.err("TOP 1 -1")
    await client.err("TOP 2 1")
    await client.err("TOP 1 1 1")
    await client.close()


async def test_dele_then_quit_expunges_exactly_those(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    store = pop3.services.store
    uids_before = store.uids(pop3.inbox_id())

    client = await pop3.login()
    assert await client.ok("DELE 1") == replies.DELE_DONE.format(number=1)
    await client.ok("DELE 3")
    assert await client.ok("STAT") == f"+OK 1 {len(messages[1])}"
    assert await client.err("RETR 1") == replies.MESSAGE_DELETED.format(number=1)
    assert await client.err("DELE 1") == replies.MESSAGE_DELETED.format(number=1)
    _, listing = await client.multiline("LIST")
    assert [line.split()[0] for line in listing] == ["2"]
    assert await client.ok("QUIT") == replies.BYE_DELETED.format(
        hostname="mail.example.test", count=2
    )
    assert await client.at_eof()

    assert store.uids(pop3.inbox_id()) == [uids_before[1]]


async def test_dropped_connection_expunges_nothing(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    store = pop3.services.store
    uids_before = store.uids(pop3.inbox_id())

    client = await pop3.login()
    await client.ok("DELE 1")
    await client.ok("RETR 2")
    await client.read_body()
    await client.close()

    second = await pop3.login()
    total = sum(len(data) for data in messages)
    assert await second.ok("STAT") == replies.STAT.format(count=3, octets=total)
    await second.ok("QUIT")
    assert store.uids(pop3.inbox_id()) == uids_before
    records = store.messages(pop3.inbox_id())
    assert all("\\Deleted" not in record.flags for record in records)
    assert all("\\Seen" not in record.flags for record in records)


async def test_rset_unmarks_deleted(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    client = await pop3.login()
    await client.ok("DELE 2")
    total = sum(len(data) for data in messages)
    reply = await client.ok("RSET")
    assert reply == replies.RSET_DONE.format(count=3, octets=total)
    await client.ok("RETR 2")
    await client.read_body()
    await client.ok("QUIT")
    assert len(pop3.services.store.uids(pop3.inbox_id())) == 3


async def test_quit_marks_retrieved_seen_not_topped(pop3: RunningPOP3) -> None:
    uids = [await pop3.deliver(message(f"m{n}")) for n in range(3)]
    client = await pop3.login()
    await client.ok("RETR 1")
    await client.read_body()
    await client.ok("TOP 2 0")
    await client.read_body()
    await client.ok("RETR 3")
    await client.read_body()
    await client.ok("DELE 3")
    await client.ok("QUIT")
    await client.at_eof()

    records = pop3.services.store.messages(pop3.inbox_id())
    flags = {record.uid: record.flags for record in records}
    assert "\\Seen" in flags[uids[0]]
    assert "\\Seen" not in flags[uids[1]]
    assert uids[2] not in flags


async def test_maildrop_is_snapshot_at_login(pop3: RunningPOP3) -> None:
    await pop3.deliver(message("before"))
    client = await pop3.login()
    await pop3.deliver(message("after"))
    assert (await client.ok("STAT")).startswith("+OK 1 ")
    await client.err("RETR 2")
    await client.ok("QUIT")
    assert len(pop3.services.store.uids(pop3.inbox_id())) == 2


async def test_maildrop_is_the_users_own(pop3: RunningPOP3) -> None:
    await pop3.deliver(message("for alice"))
    await pop3.deliver(message("for bob"), address=BOB)
    await pop3.deliver(message("for bob too"), address=BOB)
    client = await pop3.connect()
    await client.log_in(BOB, PASSWORD)
    assert (await client.ok("STAT")).startswith("+OK 2 ")
    await client.ok("DELE 1")
    await client.ok("QUIT")
    assert len(pop3.services.store.uids(pop3.inbox_id(ALICE))) == 1
    assert len(pop3.services.store.uids(pop3.inbox_id(BOB))) == 1


async def test_concurrent_sessions_are_allowed(pop3: RunningPOP3) -> None:
    await deliver_three(pop3)
    first = await pop3.login()
    second = await pop3.login()
    await first.ok("DELE 1")
    await second.ok("DELE 1")
    await second.ok("DELE 2")
    await first.ok("QUIT")
    await second.ok("QUIT")
    assert len(pop3.services.store.uids(pop3.inbox_id())) == 1


async def test_noop(pop3: RunningPOP3) -> None:
    client = await pop3.login()
    assert await client.ok("NOOP") == replies.NOOP
    await client.err("NOOP 1")
    await client.close()


async def test_pipelined_commands_answered_in_order(pop3: RunningPOP3) -> None:
    messages = await deliver_three(pop3)
    client = await pop3.connect()
    commands = [f"USER {ALICE}", f"PASS {PASSWORD}", "STAT", "RETR 1", "DELE 1", "QUIT"]
    client.writer.write("".join(line + "\r\n" for line in commands).encode())
    assert (await client.read_line()) == replies.USER_ACCEPTED
    assert (await client.read_line()).startswith("+OK maildrop has 3")
    assert (await client.read_line()).startswith("+OK 3 ")
    assert (await client.read_line()).startswith("+OK")
    assert await client.read_body() == messages[0]
    assert await client.read_line() == replies.DELE_DONE.format(number=1)
    assert (await client.read_line()).startswith("+OK")
    assert await client.at_eof()
    assert len(pop3.services.store.uids(pop3.inbox_id())) == 2
