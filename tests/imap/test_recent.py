"""\\Recent (RFC 3501 §2.3.2): a new message is recent in exactly one session."""


from tests.imap.conftest import ALICE, deliver, make_message


async def test_first_select_claims_recent(imap_server, alice, second):
    await deliver(imap_server, ALICE, make_message("one"))
    await deliver(imap_server, ALICE, make_message("two"))
    reply = await alice.command("SELECT INBOX")
    assert b"2 RECENT" in reply.untagged
    reply = await alice.command("FETCH 1 FLAGS")
    assert reply.untagged == [b"1 FETCH (FLAGS (\\Recent))"]
    reply = await alice.command("SEARCH RECENT")
    assert reply.untagged == [b"SEARCH 1 2"]
    reply = await alice.command("SEARCH NEW")
    assert reply.untagged == [b"SEARCH 1 2"]

    reply = await second.command("SELECT INBOX")
    assert b"0 RECENT" in reply.untagged
    reply = await second.command("SEARCH OLD")
    assert reply.untagged == [b"SEARCH 1 2"]
    reply = await second.command("FETCH 1 FLAGS")
    assert reply.untagged == [b"1 FETCH (FLAGS ())"]


async def test_examine_shows_recent_without_claiming(imap_server, alice, second):
    await deliver(imap_server, ALICE, make_message("one"))
    reply = await alice.command("EXAMINE INBOX")
    assert b"1 RECENT" in reply.untagged
    reply = await second.command("SELECT INBOX")
    assert b"1 RECENT" in reply.untagged


async def test_new_delivery_is_recent_in_selected_session(imap_server, alice, second):
    await alice.command("SELECT INBOX")
    await deliver(imap_server, ALICE, make_message("late"))
    reply = await alice.command("NOOP")
    assert b"1 EXISTS" in reply.untagged
    assert b"1 RECENT" in reply.untagged
    reply = await alice.command("SEARCH NEW")
    assert reply.untagged == [b"SEARCH 1"]
    await alice.command("NOOP")
    reply = await second.command("SELECT INBOX")
    assert b"0 RECENT" in reply.untagged


async def test_status_counts_unclaimed_recent(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    reply = await alice.command("STATUS INBOX (RECENT)")
    assert reply.untagged == [b'STATUS "INBOX" (RECENT 1)']
    await alice.command("SELECT INBOX")
    await alice.command("UNSELECT")
    reply = await alice.command("STATUS INBOX (RECENT)")
    assert reply.untagged == [b'STATUS "INBOX" (RECENT 0)']
