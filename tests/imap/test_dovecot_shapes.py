"""Response shapes compared with Dovecot 2.3.19 for the same messages and commands.

Each test runs one command on Garrison and on Dovecot's `imap` binary (on a
pipe, see tests/message/dovecot.py). Both servers hold the same messages
with the same flag changes. The test compares the responses after
normalising what may differ between two servers: tags, the order of FETCH
items, flags, LIST responses and STATUS items. Every other difference is a failure, except the
ones named in the normalising functions, where Garrison follows the RFC
in another way than Dovecot does.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.imap.conftest import ALICE, deliver
from tests.message import dovecot

pytestmark = pytest.mark.skipif(
    not dovecot.available() and os.environ.get("CI") != "true",
    reason="needs dovecot-imapd and root (CI installs both)",
)

_MULTIPART = (
    b"From: =?utf-8?q?B=C3=B6b?= <bob@example.test>\r\n"
    b"Sender: Relay <relay@example.test>\r\n"
    b"To: Alice <alice@example.test>, carol@example.test\r\n"
    b"Cc: Team: dave@example.test, erin@example.test;\r\n"
    b"Subject: =?utf-8?b?UXVhcnRhbHNiZXJpY2h0?= Q1\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <report-1@example.test>\r\n"
    b"In-Reply-To: <plan-7@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"Preamble.\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe,\r\n"
    b"the report is attached.\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Language: de\r\n"
    b"\r\n"
    b"<p>Gr\xc3\xbc\xc3\x9fe, the report is attached.</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="q1.pdf"\r\n'
    b'Content-Disposition: attachment; filename="q1.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <q1@example.test>\r\n"
    b"Content-Description: Quarterly report\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJeLjz9MK\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: Carol <carol@example.test>\r\n"
    b"Subject: Forwarded\r\n"
    b"Date: Sun, 31 Dec 2023 09:30:00 +0000\r\n"
    b"\r\n"
    b"Inner body.\r\n"
    b"--outer--\r\n"
)
_PLAIN = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: Plain\r\n"
    b"Date: Tue, 2 Jan 2024 08:00:00 +0000\r\n"
    b"Message-ID: <plain-1@example.test>\r\n"
    b"\r\n"
    b"Short.\r\n"
)
_MESSAGES = [_MULTIPART, _PLAIN, _MULTIPART]
# Applied on both servers before the compared command.
_STORE = b"STORE 2:3 +FLAGS.SILENT (\\Seen \\Flagged)"

# Dovecot's namespace with the special-use mailboxes every Garrison account
# has (DEFAULT_MAILBOXES in garrison.store.service).
_SPECIAL_USE_NAMESPACE = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox Archive {
    special_use = \\Archive
    auto = create
  }
}
"""

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_CHILD_ATTRIBUTES = {b"\\HasChildren", b"\\HasNoChildren"}


@pytest.fixture(autouse=True)
def _require_dovecot() -> None:
    assert dovecot.available(), "install dovecot-imapd (scripts/install-test-deps.sh)"


def _split_responses(output: bytes) -> list[bytes]:
    """Split raw server output into responses, keeping literals inline."""
    responses = []
    pos = 0
    while pos < len(output):
        start = pos
        end = output.find(b"\r\n", pos)
        # A line that ends in a literal announcement continues after it.
        while end >= 0 and (literal := _LITERAL.search(output, pos, end + 2)):
            pos = end + 2 + int(literal.group(1))
            end = output.find(b"\r\n", pos)
        if end < 0:
            responses.append(output[start:])
            break
        responses.append(output[start:end])
        pos = end + 2
    return responses


def _dovecot_untagged(command: bytes) -> list[bytes]:
    """Run `command` on Dovecot after _STORE; return its untagged responses.

    The responses are those after SELECT completes, without "* ".
    """
    output = dovecot.run_commands(
        _MESSAGES, [_STORE, command], config=_SPECIAL_USE_NAMESPACE
    )
    responses = _split_responses(output)
    selected = [index for index, line in enumerate(responses) if line.startswith(b"a1 ")]
    assert selected, output[-2000:]
    assert any(line.startswith(b"a2 OK") for line in responses), output[-2000:]
    return [
        line[2:] for line in responses[selected[0] + 1 :] if line.startswith(b"* ")
    ]


async def _garrison_untagged(imap_server, alice, command: bytes) -> list[bytes]:
    """Run `command` on Garrison after _STORE; return its untagged responses."""
    for message in _MESSAGES:
        await deliver(imap_server, ALICE, message)
    await alice.command("SELECT INBOX")
    await alice.command(_STORE)
    reply = await alice.command(command)
    return reply.untagged


def _fetch_items(responses: list[bytes]) -> dict[int, dict[bytes, bytes]]:
    """Parse FETCH responses into {sequence number: {item name: raw value}}."""
    wire = b"".join(b"\r\n* " + line for line in responses) + b"\r\n"
    return dovecot._parse_fetch(wire)


def _normalise_flags(items: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Sort the FLAGS list and drop \\Recent from it.

    The order of flags carries no meaning (RFC 3501 §7.4.2 sends a list),
    and Garrison and Dovecot order them differently. \\Recent depends on
    which session saw a message first (RFC 3501 §2.3.2), and the two
    servers are filled through different sessions here.
    """
    flags = items[b"FLAGS"].strip(b"()").split()
    compared = sorted(flag for flag in flags if flag != b"\\Recent")
    return {**items, b"FLAGS": b"(" + b" ".join(compared) + b")"}


def _list_entries(responses: list[bytes]) -> set[tuple[frozenset[bytes], bytes, bytes]]:
    """Parse LIST responses into (attributes, delimiter, name), order ignored.

    \\HasChildren and \\HasNoChildren are dropped: RFC 5258 §4 lets a
    server send them without RETURN (CHILDREN), and Garrison does while
    Dovecot does not.
    """
    entries = set()
    for line in responses:
        match = re.fullmatch(rb'LIST \(([^)]*)\) "(.)" (.+)', line)
        assert match is not None, line
        attributes = frozenset(match.group(1).split()) - _CHILD_ATTRIBUTES
        entries.add((attributes, match.group(2), match.group(3).strip(b'"')))
    return entries


def _status_items(responses: list[bytes]) -> dict[bytes, bytes]:
    """Parse one STATUS response into {item name: value}.

    The mailbox name may be quoted: Garrison sends "INBOX" and Dovecot
    INBOX, and both are the same astring (RFC 3501 §9).
    """
    assert len(responses) == 1, responses
    match = re.fullmatch(rb'STATUS (INBOX|"INBOX") \(([^)]*)\)', responses[0])
    assert match is not None, responses[0]
    words = match.group(2).split()
    return dict(zip(words[0::2], words[1::2]))


async def test_fetch_multipart_matches_dovecot(imap_server, alice):
    command = b"FETCH 1:* (ENVELOPE BODYSTRUCTURE RFC822.SIZE FLAGS)"
    expected = _fetch_items(_dovecot_untagged(command))
    garrison = _fetch_items(await _garrison_untagged(imap_server, alice, command))
    assert sorted(garrison) == [1, 2, 3]
    assert sorted(expected) == [1, 2, 3]
    for number in (1, 2, 3):
        dovecot_items = _normalise_flags(expected[number])
        garrison_items = _normalise_flags(garrison[number])
        assert sorted(garrison_items) == sorted(dovecot_items), number
        for name in dovecot_items:
            assert garrison_items[name] == dovecot_items[name], (number, name)
    assert garrison[1][b"RFC822.SIZE"] == b"%d" % len(_MULTIPART)
    assert _normalise_flags(garrison[2])[b"FLAGS"] == b"(\\Flagged \\Seen)"


async def test_esearch_min_max_count_matches_dovecot(imap_server, alice):
    command = b"UID SEARCH RETURN (MIN MAX COUNT) ALL"
    expected = _dovecot_untagged(command)
    garrison = await _garrison_untagged(imap_server, alice, command)
    tag = re.compile(rb'^ESEARCH \(TAG "[^"]*"\)')
    assert len(expected) == 1, expected
    assert len(garrison) == 1, garrison
    assert tag.sub(b"ESEARCH (TAG)", garrison[0]) == tag.sub(
        b"ESEARCH (TAG)", expected[0]
    )
    assert tag.sub(b"", garrison[0]) == b" UID MIN 1 MAX 3 COUNT 3"


async def test_list_special_use_matches_dovecot(imap_server, alice):
    command = b'LIST "" "*" RETURN (SPECIAL-USE)'
    expected = _list_entries(_dovecot_untagged(command))
    garrison = _list_entries(await _garrison_untagged(imap_server, alice, command))
    assert garrison == expected
    assert (frozenset({b"\\Sent"}), b"/", b"Sent") in garrison


async def test_status_size_matches_dovecot(imap_server, alice):
    command = b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)"
    expected = _status_items(_dovecot_untagged(command))
    garrison = _status_items(await _garrison_untagged(imap_server, alice, command))
    assert garrison == expected
    assert garrison[b"SIZE"] == b"%d" % (2 * len(_MULTIPART) + len(_PLAIN))
    assert garrison[b"UNSEEN"] == b"1"
