"""Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST, LSUB, STATUS."""

from __future__ import annotations

from tests.imap.conftest import ALICE, deliver, make_message


async def test_select_reports_mailbox_state(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    await deliver(imap_server, ALICE, make_message("two"))
    await alice.command("STORE 1 +FLAGS (\\Seen)", expect="BAD")  # not selected yet
    reply = await alice.command("SELECT INBOX")
    assert reply.text.startswith(b"[READ-WRITE]")
    assert b"2 EXISTS" in reply.untagged
    assert b"2 RECENT" in reply.untagged
    assert reply.lines(b"OK [UIDVALIDITY ")
    assert reply.lines(b"OK [UIDNEXT 3]")
    assert reply.lines(b"OK [UNSEEN 1]")
    assert reply.lines(
        b"OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
    )


async def test_examine_is_read_only(imap_server, alice):
    await deliver(imap_server, ALICE, make_message())
    reply = await alice.command("EXAMINE inbox")
    assert reply.text.startswith(b"[READ-ONLY]")
    reply = await alice.command("STORE 1 +FLAGS (\\Seen)", expect="NO")
    assert b"READ-ONLY" in reply.text
    # BODY[] does not set \Seen on a read-only mailbox.
    reply = await alice.command("FETCH 1 (BODY[])")
    assert b"FLAGS" not in reply.untagged[0]


async def test_select_missing_mailbox_unselects(alice):
    await alice.command("SELECT INBOX")
    reply = await alice.command("SELECT Nope", expect="NO")
    assert reply.text.startswith(b"[NONEXISTENT]")
    await alice.command("FETCH 1 FLAGS", expect="BAD")


async def test_create_list_rename_delete(alice):
    await alice.command("CREATE Projects/2024/Q1")
    reply = await alice.command('LIST "" "Projects*"')
    assert reply.untagged == [
        b'LIST (\\HasChildren) "/" "Projects"',
        b'LIST (\\HasChildren) "/" "Projects/2024"',
        b'LIST (\\HasNoChildren) "/" "Projects/2024/Q1"',
    ]
    reply = await alice.command('LIST "Projects/" %')
    assert reply.untagged == [b'LIST (\\HasChildren) "/" "Projects/2024"']
    await alice.command("CREATE Projects", expect="NO")
    await alice.command("RENAME Projects Work")
    reply = await alice.command('LIST "" Work/*')
    assert reply.untagged == [
        b'LIST (\\HasChildren) "/" "Work/2024"',
        b'LIST (\\HasNoChildren) "/" "Work/2024/Q1"',
    ]
    await alice.command("DELETE Work/2024/Q1")
    reply = await alice.command("DELETE Work/2024/Q1", expect="NO")
    assert reply.text.startswith(b"[NONEXISTENT]")


async def test_list_special_use_and_inbox(alice):
    reply = await alice.command('LIST "" %')
    assert reply.untagged[0] == b'LIST (\\HasNoChildren) "/" "INBOX"'
    assert b'LIST (\\HasNoChildren \\Sent) "/" "Sent"' in reply.untagged
    assert b'LIST (\\HasNoChildren \\Trash) "/" "Trash"' in reply.untagged
    reply = await alice.command('LIST "" inbox')
    assert reply.untagged == [b'LIST (\\HasNoChildren) "/" "INBOX"']
    reply = await alice.command('LIST "" ""')
    assert reply.untagged == [b'LIST (\\Noselect) "/" ""']


async def test_list_shows_parent_without_mailbox_as_noselect(alice):
    await alice.command("CREATE a/b")
    await alice.command("DELETE a")
    reply = await alice.command('LIST "" a*')
    assert reply.untagged == [
        b'LIST (\\Noselect \\HasChildren) "/" "a"',
        b'LIST (\\HasNoChildren) "/" "a/b"',
    ]


async def test_international_names_round_trip(alice):
    await alice.command("CREATE &ZeVnLIqe-")
    reply = await alice.command('LIST "" &ZeVnLIqe-')
    assert reply.untagged == [b'LIST (\\HasNoChildren) "/" "&ZeVnLIqe-"']
    await alice.command("SELECT &ZeVnLIqe-")
    reply = await alice.command("CREATE &Jjo!-bad", expect="BAD")
    assert b"invalid mailbox name" in reply.text


async def test_inbox_special_cases(alice):
    await alice.command("CREATE INBOX", expect="NO")
    await alice.command("DELETE inbox", expect="NO")


async def test_delete_selected_mailbox_refused(alice):
    await alice.command("CREATE Temp")
    await alice.command("SELECT Temp")
    reply = await alice.command("DELETE Temp", expect="NO")
    assert reply.text.startswith(b"[INUSE]")


async def test_rename_inbox_moves_messages(imap_server, alice):
    await deliver(imap_server, ALICE, make_message())
    await alice.command("RENAME INBOX Old")
    reply = await alice.command("STATUS Old (MESSAGES)")
    assert reply.untagged == [b'STATUS "Old" (MESSAGES 1)']
    reply = await alice.command("STATUS INBOX (MESSAGES)")
    assert reply.untagged == [b'STATUS "INBOX" (MESSAGES 0)']


async def test_subscribe_and_lsub(alice):
    await alice.command("CREATE Lists")
    await alice.command("SUBSCRIBE Lists")
    await alice.command("SUBSCRIBE Gone")
    reply = await alice.command('LSUB "" *')
    assert b'LSUB () "/" "Lists"' in reply.untagged
    assert b'LSUB (\\Noselect) "/" "Gone"' in reply.untagged
    await alice.command("UNSUBSCRIBE Lists")
    reply = await alice.command('LSUB "" Lists')
    assert reply.untagged == []


async def test_status_counts(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("a"))
    await deliver(imap_server, ALICE, make_message("b"))
    await alice.command("SELECT INBOX")
    await alice.command("STORE 1 +FLAGS (\\Seen)")
    reply = await alice.command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT RECENT)")
    assert reply.untagged == [
        b'STATUS "INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 RECENT 0)'
    ]
    await alice.command("STATUS Nope (MESSAGES)", expect="NO")
    await alice.command("STATUS INBOX (BOGUS)", expect="BAD")
