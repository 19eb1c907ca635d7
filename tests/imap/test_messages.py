"""Message commands: APPEND, STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE,
CLOSE, UNSELECT, CHECK, FETCH and SEARCH."""

from __future__ import annotations

import re

from tests.imap.conftest import ALICE, deliver, make_message

MULTIPART = (
    b"From: Carol <carol@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Date: Tue, 2 Jan 2024 12:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello K\xc3\xa4se\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b'Content-Disposition: attachment; filename="a.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAw==\r\n"
    b"--b1--\r\n"
)


async def test_append_returns_appenduid(alice):
    message = make_message("appended")
    reply = await alice.command(
        b'APPEND INBOX (\\Seen $Work) " 5-Mar-2024 10:00:00 +0100" {%d+}\r\n'
        % len(message)
        + message
    )
    match = re.match(rb"\[APPENDUID (\d+) (\d+)\]", reply.text)
    assert match
    assert match.group(2) == b"1"
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert reply.untagged == [
        b'1 FETCH (FLAGS (\\Recent \\Seen $Work) INTERNALDATE " 5-Mar-2024 10:00:00 +0100" '
        b"RFC822.SIZE %d)" % len(message)
    ]


async def test_append_synchronising_literal(alice):
    message = make_message("sync")
    await alice.send(b"a APPEND INBOX {%d}\r\n" % len(message))
    assert (await alice.read_response()).startswith(b"+ ")
    await alice.send(message + b"\r\n")
    reply = await alice.collect("a")
    assert reply.status == "OK"


async def test_append_to_missing_mailbox_says_trycreate(alice):
    reply = await alice.command(b"APPEND Nope {3+}\r\nabc", expect="NO")
    assert reply.text.startswith(b"[TRYCREATE]")


async def test_append_to_selected_mailbox_reports_exists(alice):
    await alice.command("SELECT INBOX")
    message = make_message()
    reply = await alice.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
    assert b"1 EXISTS" in reply.untagged


async def test_store_variants(imap_server, alice):
    for subject in ("a", "b", "c"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    reply = await alice.command("STORE 1:2 +FLAGS (\\Flagged $Label1)")
    assert reply.untagged == [
        b"1 FETCH (FLAGS (\\Flagged \\Recent $Label1))",
        b"2 FETCH (FLAGS (\\Flagged \\Recent $Label1))",
    ]
    reply = await alice.command("STORE 2 -FLAGS.SILENT ($Label1)")
    assert reply.untagged == []
    reply = await alice.command("UID STORE 3 FLAGS (\\Seen)")
    assert reply.untagged == [b"3 FETCH (UID 3 FLAGS (\\Recent \\Seen))"]
    reply = await alice.command("FETCH 1:* FLAGS")
    assert reply.untagged == [
        b"1 FETCH (FLAGS (\\Flagged \\Recent $Label1))",
        b"2 FETCH (FLAGS (\\Flagged \\Recent))",
        b"3 FETCH (FLAGS (\\Recent \\Seen))",
    ]
    await alice.command("STORE 1 +FLAGS (\\Recent)", expect="BAD")
    reply = await alice.command("STORE 9 +FLAGS (\\Seen)", expect="BAD")
    assert b"does not exist" in reply.text
    # A UID set with UIDs that do not exist is not an error.
    await alice.command("UID STORE 9 +FLAGS (\\Seen)")


async def test_copy_reports_copyuid(imap_server, alice):
    for subject in ("a", "b", "c"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    reply = await alice.command("COPY 1,3 Archive")
    assert re.match(rb"\[COPYUID \d+ 1,3 1:2\]", reply.text)
    reply = await alice.command("COPY 1 Nope", expect="NO")
    assert reply.text.startswith(b"[TRYCREATE]")
    reply = await alice.command("STATUS Archive (MESSAGES)")
    assert reply.untagged == [b'STATUS "Archive" (MESSAGES 2)']


async def test_move_sends_copyuid_then_expunges(imap_server, alice):
    for subject in ("a", "b", "c"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    reply = await alice.command("UID MOVE 2:3 Trash")
    assert re.match(rb"OK \[COPYUID \d+ 2:3 1:2\]", reply.untagged[0])
    assert reply.untagged[1:] == [b"3 EXPUNGE", b"2 EXPUNGE"]
    reply = await alice.command("FETCH 1:* UID")
    assert reply.untagged == [b"1 FETCH (UID 1)"]


async def test_expunge_and_uid_expunge(imap_server, alice):
    for subject in ("a", "b", "c", "d"):
        await deliver(imap_server, ALICE, make_message(subject))
    await alice.command("SELECT INBOX")
    await alice.command("STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    reply = await alice.command("UID EXPUNGE 2:3")
    assert reply.untagged == [b"3 EXPUNGE", b"2 EXPUNGE"]
    reply = await alice.command("EXPUNGE")
    assert reply.untagged == [b"2 EXPUNGE", b"1 EXPUNGE"]
    reply = await alice.command("SELECT INBOX")
    assert b"0 EXISTS" in reply.untagged


async def test_close_expunges_silently_and_unselect_does_not(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("a"))
    await deliver(imap_server, ALICE, make_message("b"))
    await alice.command("SELECT INBOX")
    await alice.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await alice.command("UNSELECT")
    reply = await alice.command("SELECT INBOX")
    assert b"2 EXISTS" in reply.untagged
    reply = await alice.command("CLOSE")
    assert reply.untagged == []
    reply = await alice.command("SELECT INBOX")
    assert b"1 EXISTS" in reply.untagged
    await alice.command("CHECK")


async def test_fetch_items(imap_server, alice):
    await deliver(imap_server, ALICE, MULTIPART)
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 (ENVELOPE BODYSTRUCTURE RFC822.SIZE UID)")
    line = reply.untagged[0]
    assert line.startswith(b"1 FETCH (ENVELOPE (")
    assert b'"mixed"' in line.lower()
    assert b"RFC822.SIZE %d" % len(MULTIPART) in line
    reply = await alice.command(
        "FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[]<0.4>)"
    )
    line = reply.untagged[0]
    assert b"BODY[1] {11}\r\nHello K\xc3\xa4se " in line
    assert b"BODY[2.MIME] {" in line
    assert b'filename="a.bin"' in line
    assert b"BODY[]<0> {4}\r\nFrom" in line
    assert b"FLAGS" not in line
    reply = await alice.command("FETCH 1 (RFC822.HEADER)")
    assert b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=" in reply.untagged[0]


async def test_fetch_body_sets_seen(imap_server, alice):
    await deliver(imap_server, ALICE, make_message())
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 (BODY[TEXT])")
    assert reply.untagged[0].endswith(b"FLAGS (\\Recent \\Seen))")
    reply = await alice.command("FETCH 1 (FLAGS)")
    assert reply.untagged == [b"1 FETCH (FLAGS (\\Recent \\Seen))"]


async def test_fetch_macros_and_uid_fetch(imap_server, alice):
    await deliver(imap_server, ALICE, make_message())
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 FAST")
    assert re.match(
        rb'1 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "[^"]+" RFC822.SIZE \d+\)',
        reply.untagged[0],
    )
    reply = await alice.command("UID FETCH 1:* FLAGS")
    assert reply.untagged == [b"1 FETCH (UID 1 FLAGS (\\Recent))"]
    reply = await alice.command("UID FETCH 50:* FLAGS")
    # RFC 3501 §6.4.8: "50:*" includes the highest UID even when it is below 50.
    assert reply.untagged == [b"1 FETCH (UID 1 FLAGS (\\Recent))"]
    await alice.command("FETCH 2 FLAGS", expect="BAD")


async def test_search_keys(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("apples", "red fruit\r\n"))
    await deliver(
        imap_server,
        ALICE,
        make_message("pears", "green fruit\r\n", sender="carol@example.test"),
    )
    await deliver(imap_server, ALICE, MULTIPART)
    await alice.command("SELECT INBOX")
    await alice.command("STORE 2 +FLAGS (\\Flagged)")
    cases = {
        "SEARCH ALL": b"SEARCH 1 2 3",
        "SEARCH SUBJECT APPLE": b"SEARCH 1",
        "SEARCH FROM carol": b"SEARCH 2 3",
        "SEARCH BODY green": b"SEARCH 2",
        "SEARCH TEXT fruit": b"SEARCH 1 2",
        "SEARCH FLAGGED": b"SEARCH 2",
        "SEARCH NOT FLAGGED": b"SEARCH 1 3",
        "SEARCH OR SUBJECT apples SUBJECT pears": b"SEARCH 1 2",
        "SEARCH (UNSEEN FROM bob) 2:*": b"SEARCH 2",
        "SEARCH SENTSINCE 2-Jan-2024": b"SEARCH 3",
        "SEARCH SENTBEFORE 2-Jan-2024": b"SEARCH 1 2",
        "SEARCH HEADER Content-Type multipart": b"SEARCH 3",
        "SEARCH LARGER 400": b"SEARCH 3",
        "SEARCH UID 2:3": b"SEARCH 2 3",
        "UID SEARCH SUBJECT pears": b"SEARCH 2",
        "SEARCH KEYWORD $Nope": b"SEARCH",
        # The first SELECT made all three \\Recent; NEW is RECENT UNSEEN.
        "SEARCH NEW": b"SEARCH 1 2 3",
        "SEARCH OLD": b"SEARCH",
    }
    for command, expected in cases.items():
        reply = await alice.command(command)
        assert reply.untagged == [expected], command


async def test_search_decoded_utf8_values(imap_server, alice):
    await deliver(imap_server, ALICE, MULTIPART)
    await alice.command("SELECT INBOX")
    subject = "grüße".encode()
    reply = await alice.command(
        b"SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(subject) + subject
    )
    assert reply.untagged == [b"SEARCH 1"]
    body = "käse".encode()
    reply = await alice.command(
        b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(body) + body
    )
    assert reply.untagged == [b"SEARCH 1"]


async def test_search_bad_charset(alice):
    await alice.command("SELECT INBOX")
    reply = await alice.command("SEARCH CHARSET X-NO-SUCH SUBJECT x", expect="NO")
    assert reply.text.startswith(b"[BADCHARSET (UTF-8 US-ASCII ")
    reply = await alice.command(
        b"SEARCH CHARSET US-ASCII SUBJECT {2+}\r\n\xc3\xa4", expect="BAD"
    )
