"""Dialogue tests for LIST-EXTENDED, LIST-STATUS, STATUS=SIZE, SORT, THREAD,
QUOTA, MULTIAPPEND, BINARY, OBJECTID, CREATE-SPECIAL-USE and UTF8=ACCEPT."""

from __future__ import annotations

import re

from tests.imap.conftest import ALICE, deliver, make_message


def message(subject: str, *, date: str, sender: str = "bob", extra: str = "") -> bytes:
    return (
        f"From: {sender} <{sender}@example.test>\r\n"
        f"To: alice@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"{extra}"
        f"\r\n"
        f"body of {subject}\r\n"
    ).encode()


async def test_capabilities_after_login(alice):
    reply = await alice.command("CAPABILITY")
    caps = reply.untagged[0].split()
    for name in (
        b"LIST-EXTENDED",
        b"LIST-STATUS",
        b"SORT",
        b"THREAD=REFERENCES",
        b"THREAD=ORDEREDSUBJECT",
        b"QUOTA",
        b"STATUS=SIZE",
        b"BINARY",
        b"MULTIAPPEND",
        b"OBJECTID",
        b"COMPRESS=DEFLATE",
        b"UTF8=ACCEPT",
    ):
        assert name in caps, name
    assert any(cap.startswith(b"APPENDLIMIT=") for cap in caps)


async def test_list_subscribed_selection(alice):
    await alice.command("CREATE Work/Reports")
    await alice.command("SUBSCRIBE Work/Reports")
    await alice.command("SUBSCRIBE Gone")
    reply = await alice.command('LIST (SUBSCRIBED) "" "*"')
    assert b'LIST (\\Subscribed \\HasNoChildren) "/" "Work/Reports"' in reply.untagged
    assert b'LIST (\\NonExistent \\Subscribed \\HasNoChildren) "/" "Gone"' in (
        reply.untagged
    )
    assert not any(b'"INBOX"' in line for line in reply.untagged)


async def test_list_recursivematch_childinfo(alice):
    await alice.command("CREATE Work/Reports")
    await alice.command("SUBSCRIBE Work/Reports")
    reply = await alice.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert (
        b'LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))'
        in reply.untagged
    )
    await alice.command('LIST (RECURSIVEMATCH) "" "*"', expect="BAD")
    await alice.command('LIST (BOGUS) "" "*"', expect="BAD")


async def test_list_special_use_selection_and_patterns(alice):
    reply = await alice.command('LIST (SPECIAL-USE) "" "*"')
    names = [line.rsplit(b" ", 1)[1] for line in reply.untagged]
    assert set(names) == {b'"Sent"', b'"Drafts"', b'"Trash"', b'"Junk"', b'"Archive"'}
    reply = await alice.command('LIST "" ("INBOX" "Sent")')
    assert len(reply.untagged) == 2


async def test_list_return_status_and_subscribed(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    reply = await alice.command(
        'LIST "" "INBOX" RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES SIZE UNSEEN))'
    )
    assert reply.untagged[0] == b'LIST (\\HasNoChildren) "/" "INBOX"'
    match = re.fullmatch(rb'STATUS "INBOX" \(MESSAGES 1 SIZE (\d+) UNSEEN 1\)',
                         reply.untagged[1])
    assert match is not None
    assert int(match.group(1)) == len(make_message("one"))


async def test_status_size_deleted_and_mailboxid(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    await deliver(imap_server, ALICE, make_message("two"))
    await alice.command("SELECT INBOX")
    await alice.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    reply = await alice.command(
        "STATUS INBOX (SIZE DELETED DELETED-STORAGE MAILBOXID)"
    )
    size = len(make_message("one")) + len(make_message("two"))
    assert reply.untagged[0].startswith(
        b'STATUS "INBOX" (SIZE %d DELETED 1 DELETED-STORAGE 1 MAILBOXID (M' % size
    )


async def test_mailboxid_survives_rename(alice):
    reply = await alice.command("CREATE Before")
    created = re.search(rb"MAILBOXID \((\S+)\)", reply.text)
    assert created is not None
    await alice.command("RENAME Before After")
    reply = await alice.command("SELECT After")
    selected = [line for line in reply.untagged if b"MAILBOXID" in line]
    assert selected == [b"OK [MAILBOXID (" + created.group(1) + b")] Ok"]


async def test_create_special_use(alice):
    await alice.command("CREATE Invoices (USE (\\Archive))")
    reply = await alice.command('LIST "" Invoices')
    assert reply.untagged == [b'LIST (\\HasNoChildren \\Archive) "/" "Invoices"']
    reply = await alice.command("CREATE Odd (USE (\\Important))", expect="NO")
    assert reply.text.startswith(b"[USEATTR]")


async def test_sort_and_uid_sort(imap_server, alice):
    await deliver(imap_server, ALICE, message("b", date="Tue, 2 Jan 2024 10:00:00 +0000", sender="zed"))
    await deliver(imap_server, ALICE, message("Re: a", date="Mon, 1 Jan 2024 10:00:00 +0000", sender="amy"))
    await deliver(imap_server, ALICE, message("a", date="Wed, 3 Jan 2024 10:00:00 +0000", sender="bob"))
    await alice.command("SELECT INBOX")
    reply = await alice.command("SORT (SUBJECT) UTF-8 ALL")
    assert reply.untagged == [b"SORT 2 3 1"]
    reply = await alice.command("SORT (REVERSE DATE) UTF-8 ALL")
    assert reply.untagged == [b"SORT 3 1 2"]
    reply = await alice.command("SORT (FROM) US-ASCII NOT FROM zed")
    assert reply.untagged == [b"SORT 2 3"]
    reply = await alice.command("UID SORT (ARRIVAL) UTF-8 2:3")
    assert reply.untagged == [b"SORT 2 3"]
    reply = await alice.command("SORT (SUBJECT) X-UNKNOWN ALL", expect="NO")
    assert reply.text.startswith(b"[BADCHARSET")
    await alice.command("SORT (COLOUR) UTF-8 ALL", expect="BAD")


async def test_thread_references(imap_server, alice):
    date = "Mon, 1 Jan 2024 10:0{}:00 +0000"
    await deliver(imap_server, ALICE, message("Plan", date=date.format(1), extra="Message-ID: <a@x>\r\n"))
    await deliver(imap_server, ALICE, message("Lunch", date=date.format(2), extra="Message-ID: <z@x>\r\n"))
    await deliver(imap_server, ALICE, message("Re: Plan", date=date.format(3), extra="Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n"))
    await deliver(imap_server, ALICE, message("Re: Plan", date=date.format(4), extra="Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n"))
    await alice.command("SELECT INBOX")
    reply = await alice.command("THREAD REFERENCES UTF-8 ALL")
    assert reply.untagged == [b"THREAD (1 3 4)(2)"]
    reply = await alice.command("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert reply.untagged == [b"THREAD (1 (3)(4))(2)"]
    reply = await alice.command("UID THREAD REFERENCES UTF-8 SUBJECT lunch")
    assert reply.untagged == [b"THREAD (2)"]
    reply = await alice.command("THREAD REFERENCES UTF-8 SUBJECT nothing")
    assert reply.untagged == [b"THREAD"]


async def test_quota_commands(imap_server, alice):
    reply = await alice.command("GETQUOTAROOT INBOX")
    assert reply.untagged == [b'QUOTAROOT "INBOX"']
    await alice.command('GETQUOTA ""', expect="NO")
    imap_server.directory.set_quota(ALICE, 10 * 1024)
    await deliver(imap_server, ALICE, b"Subject: x\r\n\r\n" + b"y" * 1500)
    reply = await alice.command("GETQUOTAROOT INBOX")
    assert reply.untagged == [b'QUOTAROOT "INBOX" ""', b'QUOTA "" (STORAGE 2 10)']
    reply = await alice.command('GETQUOTA ""')
    assert reply.untagged == [b'QUOTA "" (STORAGE 2 10)']
    reply = await alice.command('SETQUOTA "" (STORAGE 100)', expect="NO")
    assert reply.text.startswith(b"[NOPERM]")


async def test_append_and_copy_over_quota(imap_server, alice):
    imap_server.directory.set_quota(ALICE, 3000)
    body = b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n"
    await alice.command(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
    reply = await alice.command(
        b"APPEND INBOX {%d+}\r\n" % len(body) + body, expect="NO"
    )
    assert reply.text.startswith(b"[OVERQUOTA]")
    await alice.command("SELECT INBOX")
    reply = await alice.command("COPY 1 Archive", expect="NO")
    assert reply.text.startswith(b"[OVERQUOTA]")
    # A move stays within the account, so its usage does not change.
    await alice.command("MOVE 1 Archive")
    reply = await alice.command("STATUS Archive (MESSAGES)")
    assert reply.untagged == [b'STATUS "Archive" (MESSAGES 1)']


async def test_multiappend_is_atomic(imap_server, alice):
    one = b"Subject: one\r\n\r\nfirst\r\n"
    two = b"Subject: two\r\n\r\nsecond\r\n"
    reply = await alice.command(
        b"APPEND Drafts (\\Draft) {%d+}\r\n%s (\\Seen) {%d+}\r\n%s"
        % (len(one), one, len(two), two)
    )
    uidvalidity = re.search(rb"APPENDUID (\d+) 1:2", reply.text)
    assert uidvalidity is not None
    imap_server.directory.set_quota(ALICE, imap_server.store.account_usage(
        imap_server.directory.get_account(ALICE).id) + len(one) + 5)
    reply = await alice.command(
        b"APPEND Drafts {%d+}\r\n%s {%d+}\r\n%s" % (len(one), one, len(two), two),
        expect="NO",
    )
    assert reply.text.startswith(b"[OVERQUOTA]")
    reply = await alice.command("STATUS Drafts (MESSAGES)")
    assert reply.untagged == [b'STATUS "Drafts" (MESSAGES 2)']


async def test_binary_append_and_fetch(alice):
    payload = bytes(range(256))
    import base64

    encoded = base64.encodebytes(payload)
    body = (
        b"Subject: bin\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"caf=C3=A9\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    await alice.command(b"APPEND INBOX ~{%d+}\r\n" % len(body) + body)
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])")
    # The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
    assert reply.untagged == [b"1 FETCH (BINARY.SIZE[1] 5 BINARY.SIZE[2] 256)"]
    reply = await alice.command("FETCH 1 (BINARY.PEEK[1])")
    assert reply.untagged == [b"1 FETCH (BINARY[1] {5}\r\ncaf\xc3\xa9)"]
    reply = await alice.command("FETCH 1 (BINARY.PEEK[2]<0.4> FLAGS)")
    assert reply.untagged == [
        b"1 FETCH (BINARY[2]<0> ~{4}\r\n\x00\x01\x02\x03 FLAGS (\\Recent))"
    ]
    reply = await alice.command("FETCH 1 (BINARY[2])")
    assert b"\\Seen" in reply.untagged[0]


async def test_binary_unknown_encoding(alice):
    body = b"Subject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    await alice.command(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1 BINARY[1]", expect="NO")
    assert reply.text.startswith(b"[UNKNOWN-CTE]")


async def test_emailid_is_shared_by_copies(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("one"))
    await alice.command("SELECT INBOX")
    await alice.command("COPY 1 Archive")
    first = (await alice.command("FETCH 1 (EMAILID THREADID)")).untagged[0]
    assert re.fullmatch(rb"1 FETCH \(EMAILID \(E[0-9a-zA-Z_-]+\) THREADID NIL\)", first)
    await alice.command("SELECT Archive")
    copy = (await alice.command("FETCH 1 (EMAILID THREADID)")).untagged[0]
    assert copy == first


async def test_utf8_accept(alice):
    reply = await alice.command("ENABLE UTF8=ACCEPT")
    assert reply.untagged == [b"ENABLED UTF8=ACCEPT"]
    await alice.command('CREATE "Bücher"'.encode())
    reply = await alice.command('LIST "" "B*"')
    # RFC 6855 §3: the name travels as UTF-8 (here as a literal).
    assert reply.untagged == [b'LIST (\\HasNoChildren) "/" {7}\r\nB\xc3\xbccher']
    body = "Subject: grüße\r\n\r\nhallo\r\n".encode()
    await alice.command(b'APPEND "B\xc3\xbccher" UTF8 (~{%d+}\r\n' % len(body) + body + b")")
    reply = await alice.command('STATUS "Bücher" (MESSAGES)'.encode())
    assert reply.untagged == [b"STATUS {7}\r\nB\xc3\xbccher (MESSAGES 1)"]


async def test_utf8_append_needs_enable(alice):
    body = b"Subject: x\r\n\r\ny\r\n"
    await alice.command(
        b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(body) + body + b")", expect="BAD"
    )
