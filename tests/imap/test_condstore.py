"""CONDSTORE and QRESYNC (RFC 7162) and IMAP4rev2 (RFC 9051) over a real connection."""

from __future__ import annotations

import re

from tests.imap.conftest import ALICE, deliver, make_message


async def _fill(server, count: int) -> None:
    for index in range(count):
        await deliver(server, ALICE, make_message(f"message {index + 1}"))


def _code(reply_lines: list[bytes], name: bytes) -> int:
    for line in reply_lines:
        match = re.search(rb"\[" + name + rb" (\d+)\]", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no {name!r} in {reply_lines!r}")


async def test_capabilities_list_sync_extensions(alice):
    reply = await alice.command("CAPABILITY")
    caps = reply.untagged[0].split()
    for cap in (b"IMAP4rev2", b"CONDSTORE", b"QRESYNC", b"ESEARCH", b"SEARCHRES"):
        assert cap in caps
    assert b"WITHIN" in caps


async def test_select_condstore_reports_highestmodseq(imap_server, alice):
    await _fill(imap_server, 2)
    reply = await alice.command("SELECT INBOX")
    assert not reply.lines(b"OK [HIGHESTMODSEQ")
    reply = await alice.command("SELECT INBOX (CONDSTORE)")
    highest = _code(reply.untagged, b"HIGHESTMODSEQ")
    assert highest >= 3
    reply = await alice.command("FETCH 1:* (MODSEQ)")
    modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", line).group(1)) for line in reply.untagged]
    assert len(modseqs) == 2
    assert max(modseqs) == highest


async def test_status_highestmodseq(imap_server, alice):
    await _fill(imap_server, 1)
    reply = await alice.command("STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    assert re.fullmatch(rb'STATUS "?INBOX"? \(MESSAGES 1 HIGHESTMODSEQ \d+\)', reply.untagged[0])


async def test_fetch_changedsince_returns_only_newer(imap_server, alice):
    await _fill(imap_server, 3)
    reply = await alice.command("SELECT INBOX (CONDSTORE)")
    before = _code(reply.untagged, b"HIGHESTMODSEQ")
    await alice.command("STORE 2 +FLAGS.SILENT (\\Flagged)")
    reply = await alice.command("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % before)
    assert len(reply.untagged) == 1
    assert reply.untagged[0].startswith(b"2 FETCH (")
    assert b"\\Flagged" in reply.untagged[0]
    assert b"MODSEQ (" in reply.untagged[0]


async def test_store_unchangedsince_reports_modified(imap_server, alice, second):
    await _fill(imap_server, 3)
    reply = await alice.command("SELECT INBOX (CONDSTORE)")
    base = _code(reply.untagged, b"HIGHESTMODSEQ")
    await second.command("SELECT INBOX")
    await second.command("STORE 2 +FLAGS.SILENT (\\Seen)")

    reply = await alice.command(
        "STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % base
    )
    assert reply.text.startswith(b"[MODIFIED 2]")
    silent = [line for line in reply.untagged if b"FETCH" in line and b"FLAGS" not in line]
    assert {line.split(b" ")[0] for line in silent} == {b"1", b"3"}
    reply = await alice.command("FETCH 1:3 (FLAGS)")
    flags = {line.split(b" ")[0]: line for line in reply.untagged}
    assert b"\\Deleted" in flags[b"1"]
    assert b"\\Deleted" not in flags[b"2"]
    assert b"\\Deleted" in flags[b"3"]


async def test_uid_store_modified_names_uids(imap_server, alice):
    await _fill(imap_server, 2)
    await alice.command("SELECT INBOX")
    reply = await alice.command("UID STORE 1,2 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
    assert reply.text.startswith(b"[MODIFIED 1:2]")
    assert not reply.lines(b"1 FETCH")


async def test_unsolicited_fetch_carries_modseq(imap_server, alice, second):
    await _fill(imap_server, 1)
    await alice.command("ENABLE CONDSTORE")
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await second.command("STORE 1 +FLAGS.SILENT (\\Answered)")
    reply = await alice.command("NOOP")
    assert len(reply.untagged) == 1
    assert re.fullmatch(
        rb"1 FETCH \(UID 1 FLAGS \(\\Answered \\Recent\) MODSEQ \(\d+\)\)",
        reply.untagged[0],
    )


async def test_search_modseq(imap_server, alice):
    await _fill(imap_server, 3)
    reply = await alice.command("SELECT INBOX (CONDSTORE)")
    base = _code(reply.untagged, b"HIGHESTMODSEQ")
    reply = await alice.command("STORE 3 +FLAGS (\\Seen)")
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", reply.untagged[0]).group(1))
    reply = await alice.command("SEARCH MODSEQ %d" % (base + 1))
    assert reply.untagged == [b"SEARCH 3 (MODSEQ %d)" % modseq]
    reply = await alice.command('SEARCH MODSEQ "/flags/\\\\seen" all %d' % (base + 1))
    assert reply.untagged == [b"SEARCH 3 (MODSEQ %d)" % modseq]
    reply = await alice.command("SEARCH MODSEQ %d" % (modseq + 1))
    assert reply.untagged == [b"SEARCH"]


async def test_qresync_select_reports_vanished_and_changes(imap_server, alice, second):
    await _fill(imap_server, 5)
    await alice.command("ENABLE QRESYNC")
    reply = await alice.command("SELECT INBOX")
    uidvalidity = _code(reply.untagged, b"UIDVALIDITY")
    base = _code(reply.untagged, b"HIGHESTMODSEQ")
    await alice.command("UNSELECT")

    await second.command("SELECT INBOX")
    await second.command("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")
    await second.command("UID STORE 3 +FLAGS.SILENT (\\Flagged)")

    reply = await alice.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {base} 1:5))")
    assert reply.lines(b"VANISHED") == [b"VANISHED (EARLIER) 2,4"]
    fetches = [line for line in reply.untagged if b" FETCH " in line]
    assert len(fetches) == 1
    assert re.fullmatch(
        rb"2 FETCH \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", fetches[0]
    )
    vanished_at = reply.untagged.index(b"VANISHED (EARLIER) 2,4")
    assert vanished_at < reply.untagged.index(fetches[0])

    # A UIDVALIDITY that does not match gets a plain SELECT.
    reply = await alice.command(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {base}))")
    assert not reply.lines(b"VANISHED")
    assert reply.lines(b"OK [CLOSED]")


async def test_qresync_requires_enable(alice):
    reply = await alice.command("SELECT INBOX (QRESYNC (1 1))", expect="BAD")
    assert b"ENABLE QRESYNC" in reply.text


async def test_qresync_expunge_sends_vanished(imap_server, alice, second):
    await _fill(imap_server, 3)
    await alice.command("ENABLE QRESYNC")
    await alice.command("SELECT INBOX")
    await second.command("SELECT INBOX")
    await alice.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    reply = await alice.command("EXPUNGE")
    assert reply.untagged == [b"VANISHED 1"]
    assert reply.text.startswith(b"[HIGHESTMODSEQ ")

    await second.command("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
    await second.command("UID EXPUNGE 3")
    reply = await alice.command("NOOP")
    assert reply.untagged == [b"VANISHED 3"]
    reply = await alice.command("FETCH 1:* (UID)")
    assert reply.untagged == [b"1 FETCH (UID 2)"]


async def test_uid_fetch_vanished_earlier(imap_server, alice, second):
    await _fill(imap_server, 4)
    await alice.command("ENABLE QRESYNC")
    reply = await alice.command("SELECT INBOX")
    base = _code(reply.untagged, b"HIGHESTMODSEQ")
    await second.command("SELECT INBOX")
    await second.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await second.command("EXPUNGE")
    await alice.command("NOOP")
    reply = await alice.command(
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % base
    )
    assert reply.untagged == [b"VANISHED (EARLIER) 1"]
    reply = await alice.command("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", expect="BAD")


async def test_fetch_modifier_syntax_errors(alice):
    await alice.command("SELECT INBOX")
    for bad_command in (
        "FETCH 1 (FLAGS) (CHANGEDSINCE 0)",
        "FETCH 1 (FLAGS) (VANISHED)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE x)",
        "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
        "SELECT INBOX (QRESYNC (1 1 1:*))",
        "SELECT INBOX (BOGUS)",
    ):
        await alice.command(bad_command, expect="BAD")


async def test_rev2_search_uses_esearch_and_no_recent(imap_server, alice):
    await _fill(imap_server, 2)
    reply = await alice.command("ENABLE IMAP4rev2")
    assert reply.untagged == [b"ENABLED IMAP4rev2"]
    reply = await alice.command("SELECT INBOX")
    assert not reply.lines(b"0 RECENT")
    assert not reply.lines(b"OK [UNSEEN")
    assert reply.lines(b"LIST") == [b'LIST () "/" "INBOX"']
    tag = f"t{alice.counter + 1}"
    reply = await alice.command("SEARCH ALL")
    assert reply.untagged == [b'ESEARCH (TAG "%s") ALL 1:2' % tag.encode()]
    await deliver(imap_server, ALICE, make_message("third"))
    reply = await alice.command("NOOP")
    assert reply.untagged == [b"3 EXISTS"]


async def test_rev2_mailbox_names_are_utf8(alice):
    await alice.command("ENABLE IMAP4rev2")
    await alice.command('CREATE "Reisen/Zürich"')
    reply = await alice.command('LIST "" "Reisen/*"')
    assert reply.lines(b"LIST") == [b'LIST (\\HasNoChildren) "/" {14}\r\nReisen/Z\xc3\xbcrich']
    reply = await alice.command('LIST "" "%"')
    assert b'LIST (\\HasChildren) "/" "Reisen"' in reply.untagged
    # "&" is an ordinary character in a UTF-8 name.
    await alice.command('CREATE "A&B"')
    reply = await alice.command('LIST "" "A&B"')
    assert reply.lines(b"LIST") == [b'LIST (\\HasNoChildren) "/" "A&B"']


async def test_rev1_mailbox_names_stay_utf7(alice):
    await alice.command('CREATE "Reisen/Z&APw-rich"')
    reply = await alice.command('LIST "" "Reisen/*"')
    assert reply.lines(b"LIST") == [b'LIST (\\HasNoChildren) "/" "Reisen/Z&APw-rich"']
