"""Each IMAP limit accepts exactly its configured value and rejects one more."""


async def test_search_nesting_at_limit_is_accepted(alice):
    depth = 32  # the default imap.max_search_depth
    await alice.command("SELECT INBOX")
    await alice.command("SEARCH " + "(" * depth + "ALL" + ")" * depth)
    reply = await alice.command(
        "SEARCH " + "(" * (depth + 1) + "ALL" + ")" * (depth + 1), expect="BAD"
    )
    assert b"nested deeper than 32 levels" in reply.text


async def test_preauth_literal_total_is_reported(imap):
    await imap.send(b"a1 LOGIN {5000+}\r\n" + b"u" * 5000 + b" {4000+}\r\n")
    reply = await imap.collect("a1")
    assert reply.status == "BAD"
    assert b"[TOOBIG] Literals of 9000 bytes in one command exceed the limit of 8192" in (
        reply.text
    )


async def test_fetch_with_trailing_space_names_missing_attribute(alice):
    await alice.command("SELECT INBOX")
    reply = await alice.command("FETCH 1:* ", expect="BAD")
    assert b"missing fetch attribute" in reply.text
    assert b"\x00" not in reply.text


async def test_existing_non_ascii_mailbox_is_named_in_utf7(alice):
    await alice.command('CREATE "&Jjo-"')
    reply = await alice.command('CREATE "&Jjo-"', expect="NO")
    assert b"[ALREADYEXISTS]" in reply.text
    assert b"&Jjo-" in reply.text


async def test_keyword_length_is_bounded(alice):
    message = b"Subject: k\r\n\r\nbody\r\n"
    await alice.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
    await alice.command("SELECT INBOX")
    await alice.command("STORE 1 +FLAGS (" + "k" * 128 + ")")
    reply = await alice.command("STORE 1 +FLAGS (" + "k" * 129 + ")", expect="BAD")
    assert b"keyword longer than 128" in reply.text
    reply = await alice.command(
        "STORE 1 +FLAGS (" + " ".join(f"k{i}" for i in range(101)) + ")", expect="BAD"
    )
    assert b"more than 100 flags" in reply.text
