"""Two sessions on one mailbox: EXPUNGE timing, flag updates, IDLE wakeups."""

from __future__ import annotations

import asyncio
import time

from tests.imap.conftest import ALICE, Dialogue, deliver, make_message


async def _fill(server, count: int) -> None:
    for index in range(count):
        await deliver(server, ALICE, make_message(f"message {index + 1}"))


async def test_expunge_is_deferred_during_fetch(imap_server, alice, second):
    await _fill(imap_server, 3)
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await second.command("STORE 2 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")

    # RFC 3501 §7.4.1: no EXPUNGE after FETCH; message 2 returns no data,
    # and message 3 keeps its number and its own content.
    reply = await alice.command("FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert not reply.lines(b"2 EXPUNGE")
    fetched = {
        line.split(b" ")[0]: line for line in reply.untagged if b" FETCH " in line
    }
    assert set(fetched) == {b"1", b"3"}
    assert b"UID 3" in fetched[b"3"]
    assert b"message 3" in fetched[b"3"]
    assert reply.text.startswith(b"[EXPUNGEISSUED]")

    reply = await alice.command("SEARCH ALL")
    assert not reply.lines(b"2 EXPUNGE")
    assert reply.lines(b"SEARCH") == [b"SEARCH 1 3"]

    reply = await alice.command("NOOP")
    assert reply.untagged == [b"2 EXPUNGE"]
    reply = await alice.command("FETCH 2 (UID)")
    assert reply.untagged == [b"2 FETCH (UID 3)"]


async def test_uid_fetch_announces_expunge(imap_server, alice, second):
    await _fill(imap_server, 2)
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await second.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")
    reply = await alice.command("UID FETCH 1:* (FLAGS)")
    assert reply.untagged[-1] == b"1 EXPUNGE"
    # Alice selected first, so both messages are \Recent in her session.
    assert reply.untagged[0] == b"2 FETCH (UID 2 FLAGS (\\Recent))"


async def test_new_mail_and_flag_changes_reach_other_session(
    imap_server, alice, second
):
    await _fill(imap_server, 1)
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await second.command("STORE 1 +FLAGS.SILENT (\\Answered)")
    await deliver(imap_server, ALICE, make_message("late"))
    reply = await alice.command("NOOP")
    assert b"1 FETCH (UID 1 FLAGS (\\Answered \\Recent))" in reply.untagged
    assert b"2 EXISTS" in reply.untagged
    reply = await alice.command("NOOP")
    assert reply.untagged == []


async def test_expunges_sent_in_descending_order(imap_server, alice, second):
    await _fill(imap_server, 5)
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await second.command("STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")
    reply = await alice.command("NOOP")
    assert reply.untagged == [b"5 EXPUNGE", b"4 EXPUNGE", b"2 EXPUNGE"]
    reply = await alice.command("FETCH 1:* (UID)")
    assert reply.untagged == [b"1 FETCH (UID 1)", b"2 FETCH (UID 3)"]


async def test_idle_wakes_on_delivery(imap_server, alice):
    await alice.command("SELECT INBOX")
    await alice.send("i IDLE\r\n")
    assert (await alice.read_response()).startswith(b"+ ")
    started = time.monotonic()
    await deliver(imap_server, ALICE, make_message("pushed"))
    line = await alice.read_response(timeout=1)
    assert line == b"* 1 EXISTS"
    assert time.monotonic() - started < 1
    assert await alice.read_response(timeout=1) == b"* 1 RECENT"
    await alice.send("DONE\r\n")
    reply = await alice.collect("i")
    assert reply.status == "OK"


async def test_idle_reports_expunge_from_other_session(imap_server, alice, second):
    await _fill(imap_server, 2)
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await alice.send("i IDLE\r\n")
    await alice.read_response()
    await second.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert (
        await alice.read_response(timeout=1)
        == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"
    )
    await second.command("EXPUNGE")
    assert await alice.read_response(timeout=1) == b"* 1 EXPUNGE"
    await alice.send("DONE\r\n")
    assert (await alice.collect("i")).status == "OK"


async def test_idle_requires_done(alice):
    await alice.send("i IDLE\r\n")
    await alice.read_response()
    await alice.send("NOOP\r\n")
    reply = await alice.collect("i")
    assert reply.status == "BAD"
    await alice.command("NOOP")


async def test_idle_timeout_ends_session(services):
    from tests.imap.conftest import IMAPTestServer

    server = IMAPTestServer(services)
    await server.start(imap={"idle_timeout": 0.3})
    try:
        dialogue = await Dialogue.open(server.port("imap"))
        await dialogue.login()
        await dialogue.send("i IDLE\r\n")
        await dialogue.read_response()
        line = await dialogue.read_response(timeout=3)
        assert line.startswith(b"* BYE")
        await dialogue.close()
    finally:
        await server.stop()


async def test_shutdown_sends_bye(imap_server, alice):
    stopping = asyncio.ensure_future(imap_server.protocols["imap"].shutdown())
    line = await alice.read_response(timeout=5)
    assert line == b"* BYE Server shutting down"
    await stopping
