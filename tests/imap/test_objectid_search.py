"""EMAILID and THREADID search keys (RFC 8474 §6)."""

from __future__ import annotations

import re

from tests.imap.conftest import ALICE, deliver, make_message

_EMAILID = re.compile(rb"EMAILID \(([A-Za-z0-9_-]+)\)")


async def _email_ids(alice, count: int) -> list[bytes]:
    """Return the EMAILID of messages 1 to `count`, in sequence order."""
    reply = await alice.command(f"FETCH 1:{count} (EMAILID)")
    ids = []
    for line in reply.untagged:
        match = _EMAILID.search(line)
        assert match is not None, line
        ids.append(match.group(1))
    assert len(ids) == count
    return ids


async def test_emailid_matches_one_message(imap_server, alice):
    for subject in ("one", "two", "three"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    ids = await _email_ids(alice, 3)
    assert len(set(ids)) == 3
    for number, email_id in enumerate(ids, start=1):
        reply = await alice.command(b"SEARCH EMAILID " + email_id)
        assert reply.untagged == [b"SEARCH %d" % number]
    reply = await alice.command(b"UID SEARCH EMAILID " + ids[1])
    assert reply.untagged == [b"SEARCH 2"]


async def test_emailid_unknown_matches_nothing(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    await alice.command("SELECT INBOX")
    (email_id,) = await _email_ids(alice, 1)
    reply = await alice.command("SEARCH EMAILID Enosuchmessage")
    assert reply.untagged == [b"SEARCH"]
    # Object ids are compared exactly, including the letter case.
    reply = await alice.command(b"SEARCH EMAILID " + email_id.swapcase())
    assert reply.untagged == [b"SEARCH"]


async def test_emailid_shared_by_copies(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    await deliver(imap_server, ALICE, make_message("two"))
    await alice.command("SELECT INBOX")
    ids = await _email_ids(alice, 2)
    await alice.command("COPY 2 INBOX")
    reply = await alice.command(b"SEARCH EMAILID " + ids[1])
    assert reply.untagged == [b"SEARCH 2 3"]


async def test_emailid_combines_with_keys(imap_server, alice):
    for subject in ("one", "two"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    ids = await _email_ids(alice, 2)
    await alice.command("STORE 1 +FLAGS.SILENT (\\Flagged)")
    reply = await alice.command(b"SEARCH FLAGGED EMAILID " + ids[0])
    assert reply.untagged == [b"SEARCH 1"]
    reply = await alice.command(b"SEARCH FLAGGED EMAILID " + ids[1])
    assert reply.untagged == [b"SEARCH"]
    reply = await alice.command(b"SEARCH NOT EMAILID " + ids[0])
    assert reply.untagged == [b"SEARCH 2"]
    reply = await alice.command(b"SEARCH OR EMAILID %s EMAILID %s" % tuple(ids))
    assert reply.untagged == [b"SEARCH 1 2"]
    tag = f"t{alice.counter + 1}"
    reply = await alice.command(b"SEARCH RETURN (COUNT) EMAILID " + ids[1])
    assert reply.untagged == [b'ESEARCH (TAG "%s") COUNT 1' % tag.encode()]


async def test_threadid_matches_nothing(imap_server, alice):
    for subject in ("one", "two"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 (THREADID)")
    assert reply.untagged == [b"1 FETCH (THREADID NIL)"]
    reply = await alice.command("SEARCH THREADID T1")
    assert reply.untagged == [b"SEARCH"]
    reply = await alice.command("UID SEARCH THREADID T1")
    assert reply.untagged == [b"SEARCH"]
    reply = await alice.command("SEARCH NOT THREADID T1")
    assert reply.untagged == [b"SEARCH 1 2"]


async def test_objectid_syntax_errors(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    await alice.command("SELECT INBOX")
    bad_arguments = (
        "SEARCH EMAILID",
        "SEARCH EMAILID ",
        'SEARCH EMAILID "E1"',
        "SEARCH EMAILID E1.2",
        "SEARCH EMAILID (E1)",
        "SEARCH THREADID",
        "SEARCH THREADID T+1",
        "SEARCH EMAILID " + "E" * 256,
    )
    for command in bad_arguments:
        reply = await alice.command(command, expect="BAD")
        assert reply.untagged == [], command
    # 255 characters is the maximum length, and still valid.
    reply = await alice.command("SEARCH EMAILID " + "E" * 255)
    assert reply.untagged == [b"SEARCH"]
    # The session is intact after the errors.
    reply = await alice.command("SEARCH ALL")
    assert reply.untagged == [b"SEARCH 1"]
