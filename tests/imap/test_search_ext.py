"""ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032) and full-text SEARCH."""

from __future__ import annotations

import base64
import quopri
from datetime import datetime, timedelta, timezone

import pytest

from tests.imap.conftest import ALICE, deliver, make_message

# Simplified Chinese, and the traditional forms for Big5, which has no
# simplified characters.
CHINESE = {
    "simplified": (
        "今天我们讨论邮件服务器的全文检索功能，请准时参加会议。",
        "会议通知",
        ("全文检索", "邮件服务器", "准时参加会议"),
    ),
    "traditional": (
        "今天我們討論郵件伺服器的全文檢索功能，請準時參加會議。",
        "會議通知",
        ("全文檢索", "郵件伺服器", "準時參加會議"),
    ),
}


def _chinese_message(
    charset: str, encoding: str, marker: str, script: str = "simplified"
) -> bytes:
    """A message whose subject and body are Chinese in `charset` and `encoding`."""
    text, subject_text, _ = CHINESE[script]
    body = (text + marker + "\r\n").encode(charset)
    if encoding == "base64":
        payload = base64.encodebytes(body).replace(b"\n", b"\r\n")
    elif encoding == "quoted-printable":
        payload = quopri.encodestring(body).replace(b"\n", b"\r\n")
    else:
        payload = body
    subject = base64.b64encode(subject_text.encode(charset)).decode("ascii")
    return (
        f"From: Bob <bob@example.test>\r\n"
        f"To: Alice <alice@example.test>\r\n"
        f"Subject: =?{charset}?B?{subject}?=\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <{marker}@example.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n"
        f"\r\n"
    ).encode("ascii") + payload


async def _fill(server, count: int) -> None:
    for index in range(count):
        await deliver(server, ALICE, make_message(f"message {index + 1}"))


async def test_esearch_return_options(imap_server, alice):
    await _fill(imap_server, 5)
    await alice.command("SELECT INBOX")
    await alice.command("STORE 2,4,5 +FLAGS.SILENT (\\Flagged)")
    tag = f"t{alice.counter + 1}"
    reply = await alice.command("SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED")
    assert reply.untagged == [
        b'ESEARCH (TAG "%s") MIN 2 MAX 5 COUNT 3 ALL 2,4:5' % tag.encode()
    ]
    tag = f"t{alice.counter + 1}"
    reply = await alice.command("UID SEARCH RETURN () FLAGGED")
    assert reply.untagged == [b'ESEARCH (TAG "%s") UID ALL 2,4:5' % tag.encode()]
    tag = f"t{alice.counter + 1}"
    reply = await alice.command("SEARCH RETURN (MIN COUNT) DELETED")
    # RFC 4731 §3.1: no MIN, MAX or ALL for an empty result, but COUNT 0.
    assert reply.untagged == [b'ESEARCH (TAG "%s") COUNT 0' % tag.encode()]
    await alice.command("SEARCH RETURN (BOGUS) ALL", expect="BAD")


async def test_searchres_save_and_use(imap_server, alice):
    await _fill(imap_server, 4)
    await alice.command("SELECT INBOX")
    await alice.command("STORE 1,3 +FLAGS.SILENT (\\Flagged)")
    reply = await alice.command("SEARCH RETURN (SAVE) FLAGGED")
    assert reply.untagged == []
    reply = await alice.command("FETCH $ (UID)")
    assert reply.untagged == [b"1 FETCH (UID 1)", b"3 FETCH (UID 3)"]
    reply = await alice.command("UID SEARCH UID $ NOT SEEN")
    assert reply.untagged == [b"SEARCH 1 3"]
    reply = await alice.command("SEARCH $")
    assert reply.untagged == [b"SEARCH 1 3"]
    await alice.command("STORE $ +FLAGS.SILENT (\\Deleted)")
    await alice.command("EXPUNGE")
    # RFC 5182 §2.1: expunged messages leave the saved result.
    reply = await alice.command("FETCH $ (UID)")
    assert reply.untagged == []

    # SAVE with MIN keeps only the minimum.
    reply = await alice.command("SEARCH RETURN (SAVE MIN) ALL")
    assert reply.lines(b"ESEARCH")[0].endswith(b"MIN 1")
    reply = await alice.command("UID FETCH $ (UID)")
    assert reply.untagged == [b"1 FETCH (UID 2)"]

    # A failed SEARCH ... RETURN (SAVE) empties "$".
    await alice.command("SEARCH RETURN (SAVE) CHARSET X-NO-SUCH TEXT x", expect="NO")
    reply = await alice.command("FETCH $ (UID)")
    assert reply.untagged == []


async def test_saved_result_resets_on_select(imap_server, alice):
    await _fill(imap_server, 2)
    await alice.command("SELECT INBOX")
    await alice.command("SEARCH RETURN (SAVE) ALL")
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH $ (UID)")
    assert reply.untagged == []


async def test_within_older_younger(imap_server, alice):
    account = imap_server.directory.get_account(ALICE)
    inbox = imap_server.store.get_mailbox(account.id, "INBOX")
    now = datetime.now(timezone.utc)
    await imap_server.store.append(
        inbox.id, make_message("old"), internaldate=now - timedelta(days=3)
    )
    await imap_server.store.append(
        inbox.id, make_message("new"), internaldate=now - timedelta(minutes=5)
    )
    await alice.command("SELECT INBOX")
    reply = await alice.command("SEARCH YOUNGER 3600")
    assert reply.untagged == [b"SEARCH 2"]
    reply = await alice.command("SEARCH OLDER 86400")
    assert reply.untagged == [b"SEARCH 1"]
    reply = await alice.command("SEARCH OLDER 864000")
    assert reply.untagged == [b"SEARCH"]
    await alice.command("SEARCH YOUNGER 0", expect="BAD")


@pytest.mark.parametrize(
    "charset",
    ["gb2312", "gbk", "gb18030", "big5", "utf-8"],
)
@pytest.mark.parametrize("encoding", ["8bit", "base64", "quoted-printable"])
async def test_chinese_body_found_by_substring(imap_server, alice, charset, encoding):
    script = "traditional" if charset == "big5" else "simplified"
    _, subject_text, needles = CHINESE[script]
    await deliver(imap_server, ALICE, make_message("plain", "unrelated text\r\n"))
    await deliver(imap_server, ALICE, _chinese_message(charset, encoding, "m1", script))
    await alice.command("SELECT INBOX")
    for needle in needles:
        reply = await alice.command(
            b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(needle.encode()) + needle.encode()
        )
        assert reply.untagged == [b"SEARCH 2"], (needle, charset, encoding)
    subject = subject_text.encode()
    reply = await alice.command(b"SEARCH SUBJECT {%d+}\r\n" % len(subject) + subject)
    assert reply.untagged == [b"SEARCH 2"]


async def test_search_charset_gb2312_needle(imap_server, alice):
    await deliver(imap_server, ALICE, _chinese_message("gbk", "base64", "m2"))
    await alice.command("SELECT INBOX")
    needle = "全文检索".encode("gb2312")
    reply = await alice.command(
        b"SEARCH CHARSET GB2312 TEXT {%d+}\r\n" % len(needle) + needle
    )
    assert reply.untagged == [b"SEARCH 1"]


async def test_short_needle_scans(imap_server, alice):
    await deliver(imap_server, ALICE, _chinese_message("utf-8", "base64", "m3"))
    await deliver(imap_server, ALICE, make_message("other", "nothing\r\n"))
    await alice.command("SELECT INBOX")
    needle = "会议".encode()
    reply = await alice.command(b"SEARCH BODY {%d+}\r\n" % len(needle) + needle)
    assert reply.untagged == [b"SEARCH 1"]
    reply = await alice.command("SEARCH BODY no")
    assert reply.untagged == [b"SEARCH 2"]


async def test_body_does_not_match_header(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("Quarterly planning", "see you\r\n"))
    await alice.command("SELECT INBOX")
    reply = await alice.command("SEARCH BODY Quarterly")
    assert reply.untagged == [b"SEARCH"]
    reply = await alice.command("SEARCH TEXT Quarterly")
    assert reply.untagged == [b"SEARCH 1"]
    reply = await alice.command("SEARCH BODY qu")
    assert reply.untagged == [b"SEARCH"]
    reply = await alice.command("SEARCH NOT BODY quarterly")
    assert reply.untagged == [b"SEARCH 1"]


async def test_unindexed_message_is_scanned(imap_server, alice):
    await deliver(imap_server, ALICE, make_message("kept", "an ordinary body\r\n"))

    # Drop the index entry, as for a message stored before the index existed.
    def drop(txn):
        txn.conn.execute("DELETE FROM search_text")
        txn.conn.execute("DELETE FROM search_docs")

    await imap_server.store.write(drop)
    await alice.command("SELECT INBOX")
    reply = await alice.command("SEARCH BODY ordinary")
    assert reply.untagged == [b"SEARCH 1"]
    reply = await alice.command("SEARCH BODY missing")
    assert reply.untagged == [b"SEARCH"]


async def test_fulltext_index_is_per_mailbox(imap_server, alice):
    await deliver(imap_server, "bob@example.test", make_message("bob's", "secret plans\r\n"))
    await deliver(imap_server, ALICE, make_message("alice's", "other words\r\n"))
    await alice.command("SELECT INBOX")
    reply = await alice.command("SEARCH BODY secret")
    assert reply.untagged == [b"SEARCH"]
