"""Any-state and not-authenticated commands: greeting, CAPABILITY, LOGIN,
AUTHENTICATE PLAIN, STARTTLS, ID, ENABLE, NAMESPACE, LOGOUT."""

from __future__ import annotations

import base64

from tests.imap.conftest import ALICE, PASSWORD, Dialogue


async def test_greeting_carries_capabilities(imap):
    assert imap.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    assert b"STARTTLS" in imap.greeting
    # Loopback may log in without TLS by default.
    assert b"AUTH=PLAIN" in imap.greeting
    assert b"LOGINDISABLED" not in imap.greeting


async def test_capability_after_login(alice):
    reply = await alice.command("CAPABILITY")
    caps = reply.untagged[0].split()
    for cap in (
        b"UIDPLUS",
        b"MOVE",
        b"IDLE",
        b"NAMESPACE",
        b"SPECIAL-USE",
        b"CHILDREN",
        b"UNSELECT",
        b"ENABLE",
        b"ID",
        b"LITERAL+",
        b"SASL-IR",
    ):
        assert cap in caps
    assert b"STARTTLS" not in caps


async def test_login_ok_carries_capabilities(imap):
    reply = await imap.login()
    assert reply.text.startswith(b"[CAPABILITY IMAP4rev1")
    assert b"UIDPLUS" in reply.text


async def test_login_wrong_password(imap):
    reply = await imap.command(f'LOGIN {ALICE} "wrong-password"', expect="NO")
    assert reply.text.startswith(b"[AUTHENTICATIONFAILED]")


async def test_login_unknown_user(imap):
    reply = await imap.command('LOGIN nobody@example.test "x"', expect="NO")
    assert reply.text.startswith(b"[AUTHENTICATIONFAILED]")


async def test_repeated_failures_disconnect(imap):
    for _ in range(2):
        await imap.command(f'LOGIN {ALICE} "bad"', expect="NO")
    await imap.send(f'x LOGIN {ALICE} "bad"\r\n')
    line = await imap.read_response()
    assert line.startswith(b"* BYE")


async def test_authenticate_plain_sasl_ir(imap):
    token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    reply = await imap.command(f"AUTHENTICATE PLAIN {token}")
    assert b"CAPABILITY" in reply.text


async def test_authenticate_plain_with_continuation(imap):
    await imap.send("a AUTHENTICATE PLAIN\r\n")
    assert (await imap.read_response()).startswith(b"+")
    token = base64.b64encode(f"{ALICE}\0{ALICE}\0{PASSWORD}".encode())
    await imap.send(token + b"\r\n")
    reply = await imap.collect("a")
    assert reply.status == "OK"


async def test_authenticate_cancel(imap):
    await imap.send("a AUTHENTICATE PLAIN\r\n")
    await imap.read_response()
    await imap.send("*\r\n")
    assert (await imap.collect("a")).status == "BAD"


async def test_authenticate_other_authzid_refused(imap):
    token = base64.b64encode(f"bob@example.test\0{ALICE}\0{PASSWORD}".encode()).decode()
    await imap.command(f"AUTHENTICATE PLAIN {token}", expect="NO")


async def test_authenticate_unknown_mechanism(imap):
    await imap.command("AUTHENTICATE CRAM-MD5", expect="NO")


async def test_plaintext_login_refused_when_loopback_not_trusted(services):
    from tests.imap.conftest import IMAPTestServer

    server = IMAPTestServer(services)
    await server.start(tls={"allow_plaintext_auth_from_loopback": False})
    try:
        dialogue = await Dialogue.open(server.port("imap"))
        assert b"LOGINDISABLED" in dialogue.greeting
        assert b"AUTH=PLAIN" not in dialogue.greeting
        reply = await dialogue.command(f'LOGIN {ALICE} "{PASSWORD}"', expect="NO")
        assert reply.text.startswith(b"[PRIVACYREQUIRED]")
        token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        reply = await dialogue.command(f"AUTHENTICATE PLAIN {token}", expect="NO")
        assert reply.text.startswith(b"[PRIVACYREQUIRED]")

        await dialogue.command("STARTTLS")
        await dialogue.writer.start_tls(server.tls_client_context())
        caps = (await dialogue.command("CAPABILITY")).untagged[0]
        assert b"AUTH=PLAIN" in caps
        assert b"STARTTLS" not in caps
        assert b"LOGINDISABLED" not in caps
        await dialogue.login()
        await dialogue.close()
    finally:
        await server.stop()


async def test_starttls_discards_pipelined_plaintext(imap_server):
    dialogue = await Dialogue.open(imap_server.port("imap"))
    # RFC 3207 §4 / RFC 3501 §6.2.1: "t9 LOGOUT" is injected before the handshake.
    await dialogue.send("s STARTTLS\r\nt9 LOGOUT\r\n")
    reply = await dialogue.collect("s")
    assert reply.status == "OK"
    await dialogue.writer.start_tls(imap_server.tls_client_context())
    reply = await dialogue.command("NOOP")
    assert reply.untagged == []
    await dialogue.close()


async def test_starttls_twice_is_rejected(imap_server):
    dialogue = await Dialogue.open(imap_server.port("imap"))
    await dialogue.command("STARTTLS")
    await dialogue.writer.start_tls(imap_server.tls_client_context())
    await dialogue.command("STARTTLS", expect="BAD")
    await dialogue.close()


async def test_starttls_not_offered_on_imaps(imap_server):
    dialogue = await Dialogue.open(
        imap_server.port("imaps"), tls=imap_server.tls_client_context()
    )
    assert b"STARTTLS" not in dialogue.greeting
    await dialogue.command("STARTTLS", expect="BAD")
    await dialogue.login()
    await dialogue.close()


async def test_id_namespace_enable(alice):
    reply = await alice.command('ID ("name" "pytest" "version" "1")')
    assert reply.untagged == [b'ID ("name" "Garrison" "vendor" "Garrison")']
    reply = await alice.command("NAMESPACE")
    assert reply.untagged == [b'NAMESPACE (("" "/")) NIL NIL']
    reply = await alice.command("ENABLE X-UNKNOWN")
    assert reply.untagged == [b"ENABLED"]
    reply = await alice.command("ENABLE CONDSTORE X-UNKNOWN")
    assert reply.untagged == [b"ENABLED CONDSTORE"]
    # RFC 5161 §3.1: only newly enabled extensions are listed.
    reply = await alice.command("ENABLE CONDSTORE")
    assert reply.untagged == [b"ENABLED"]


async def test_logout_sends_bye_then_ok(alice):
    reply = await alice.command("LOGOUT")
    assert reply.untagged == [b"BYE Logging out"]
    assert await alice.reader.read() == b""


async def test_commands_in_wrong_state(imap):
    for command in (
        "SELECT INBOX",
        'LIST "" *',
        "FETCH 1 FLAGS",
        "ENABLE X",
        "APPEND INBOX {1+}\r\nx",
    ):
        reply = await imap.command(command, expect="BAD")
        assert b"not valid in the not authenticated state" in reply.text
    await imap.login()
    for command in (
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS \\Seen",
        "EXPUNGE",
        "CLOSE",
        "UID SEARCH ALL",
    ):
        reply = await imap.command(command, expect="BAD")
        assert b"authenticated state" in reply.text
    reply = await imap.command(f'LOGIN {ALICE} "{PASSWORD}"', expect="BAD")
    assert b"authenticated state" in reply.text


async def test_unknown_command_and_missing_tag(imap):
    reply = await imap.command("FROBNICATE", expect="BAD")
    assert b"unknown command" in reply.text
    await imap.send(b"\r\n")
    line = await imap.read_response()
    assert line.startswith(b"* BAD")
    await imap.command("NOOP")
