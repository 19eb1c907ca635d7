"""Limits a client controls: literal sizes, line length, nesting, timeouts."""

from __future__ import annotations

import asyncio

from tests.imap.conftest import ALICE, PASSWORD, Dialogue, IMAPTestServer


async def test_huge_literal_before_login_refused(imap):
    await imap.send("a LOGIN {4294967296}\r\n")
    reply = await imap.collect("a")
    assert reply.status == "BAD"
    assert reply.text.startswith(b"[TOOBIG]")
    # The connection stays usable.
    await imap.login()


async def test_preauth_literal_limit_is_small(imap):
    await imap.send("a LOGIN {9000}\r\n")
    reply = await imap.collect("a")
    assert reply.text.startswith(b"[TOOBIG]")


async def test_huge_append_after_login_refused(alice):
    await alice.send("a APPEND INBOX {4294967296}\r\n")
    reply = await alice.collect("a")
    assert reply.status == "NO"
    assert reply.text.startswith(b"[TOOBIG]")
    await alice.command("NOOP")


async def test_huge_non_synchronising_literal_closes(alice):
    await alice.send("a APPEND INBOX {4294967296+}\r\n")
    line = await alice.read_response()
    assert line.startswith(b"a BAD [TOOBIG]")
    assert (await alice.read_response()).startswith(b"* BYE")
    assert await alice.reader.read() == b""


async def test_line_too_long_closes(services):
    server = IMAPTestServer(services)
    await server.start(imap={"max_line_length": 1024})
    try:
        dialogue = await Dialogue.open(server.port("imap"))
        await dialogue.send(b"a NOOP " + b"x" * 5000 + b"\r\n")
        line = await dialogue.read_response()
        assert line.startswith(b"* BYE Command line too long")
        await dialogue.close()
    finally:
        await server.stop()


async def test_large_append_is_spooled(services):
    server = IMAPTestServer(services)
    await server.start()
    try:
        dialogue = await Dialogue.open(server.port("imap"))
        await dialogue.login()
        body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 2000
        reply = await dialogue.command(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
        assert b"APPENDUID" in reply.text
        await dialogue.command("SELECT INBOX")
        reply = await dialogue.command("FETCH 1 RFC822.SIZE")
        assert reply.untagged == [b"1 FETCH (RFC822.SIZE %d)" % len(body)]
        await dialogue.close()
    finally:
        await server.stop()


async def test_deep_search_nesting_is_bad(alice):
    await alice.command("SELECT INBOX")
    reply = await alice.command(
        "SEARCH " + "(" * 10_000 + "ALL" + ")" * 10_000, expect="BAD"
    )
    assert b"nested deeper" in reply.text
    await alice.command("NOOP")


async def test_unbalanced_parentheses(alice):
    await alice.command("SELECT INBOX")
    await alice.command("FETCH 1 (FLAGS", expect="BAD")
    await alice.command("SEARCH (ALL", expect="BAD")
    await alice.command("SEARCH ALL)", expect="BAD")
    await alice.command("STORE 1 +FLAGS (\\Seen", expect="BAD")


async def test_bad_sequence_sets(alice):
    await alice.command("SELECT INBOX")
    for sequence_set in ("0", "1:", ":1", "1,,2", "a", "-1", "4294967296", "1:*:2"):
        await alice.command(f"FETCH {sequence_set} FLAGS", expect="BAD")


async def test_autologout(services):
    server = IMAPTestServer(services)
    await server.start(imap={"autologout": 0.3})
    try:
        dialogue = await Dialogue.open(server.port("imap"))
        line = await dialogue.read_response(timeout=3)
        assert line.startswith(b"* BYE Autologout")
        await dialogue.close()
    finally:
        await server.stop()


async def test_many_bad_commands_disconnect(imap):
    for _ in range(19):
        await imap.command("BOGUS", expect="BAD")
    await imap.send("x BOGUS\r\n")
    assert (await imap.read_response()).startswith(b"x BAD")
    assert (await imap.read_response()).startswith(b"* BYE")


async def test_client_disconnect_mid_literal_is_harmless(imap_server):
    dialogue = await Dialogue.open(imap_server.port("imap"))
    await dialogue.login()
    await dialogue.send(b"a APPEND INBOX {100000+}\r\npartial")
    await dialogue.close()
    await asyncio.sleep(0.1)
    other = await Dialogue.open(imap_server.port("imap"))
    await other.command(f'LOGIN {ALICE} "{PASSWORD}"')
    reply = await other.command("SELECT INBOX")
    assert b"0 EXISTS" in reply.untagged
    await other.close()
