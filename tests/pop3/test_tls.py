"""STLS and implicit TLS, with a scripted client and with Python's poplib."""

from __future__ import annotations

import asyncio
import poplib
import ssl

from garrison.pop3 import replies
from tests.pop3.conftest import ALICE, PASSWORD, RunningPOP3, StartPOP3, message


async def test_stls_then_login(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.ok("STLS") == replies.STLS_READY
    await client.start_tls(pop3.client_context())
    assert client.writer.get_extra_info("ssl_object") is not None
    _, capabilities = await client.multiline("CAPA")
    assert "STLS" not in capabilities
    await client.err("STLS")
    await client.log_in(ALICE, PASSWORD)
    await client.close()


async def test_stls_discards_pipelined_commands(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    # A man in the middle could append USER to the client's STLS; the
    # server must not act on it once TLS is up.
    client.writer.write(f"STLS\r\nUSER {ALICE}\r\nCAPA\r\n".encode())
    assert await client.read_line() == replies.STLS_READY
    await client.start_tls(pop3.client_context())
    assert await client.err(f"PASS {PASSWORD}") == replies.PASS_WITHOUT_USER
    await client.close()


async def test_stls_forgets_user_given_before(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.ok(f"USER {ALICE}")
    await client.ok("STLS")
    await client.start_tls(pop3.client_context())
    assert await client.err(f"PASS {PASSWORD}") == replies.PASS_WITHOUT_USER
    await client.close()


async def test_stls_failed_handshake_closes(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.ok("STLS")
    client.writer.write(b"this is not a TLS client hello\r\n" * 4)
    assert await client.at_eof()
    # The server keeps serving other clients.
    other = await pop3.connect()
    await other.ok("CAPA")
    await other.close()


async def test_implicit_tls_listener(start_pop3: StartPOP3) -> None:
    running = await start_pop3(tls="implicit")
    await running.deliver(message("over tls"))
    client = await running.connect(tls=running.client_context())
    _, capabilities = await client.multiline("CAPA")
    assert "STLS" not in capabilities
    await client.log_in(ALICE, PASSWORD)
    await client.ok("RETR 1")
    assert await client.read_body() == message("over tls")
    await client.close()


def poplib_session(port: int, context: ssl.SSLContext, implicit: bool) -> dict:
    """Run a poplib session in a thread: list, fetch, delete one, quit."""
    if implicit:
        client = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=10)
    else:
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.stls(context=context)
    try:
        capabilities = client.capa()
        client.user(ALICE)
        client.pass_(PASSWORD)
        count, size = client.stat()
        _, lines, _ = client.retr(1)
        _, uidl, _ = client.uidl()
        _, top, _ = client.top(1, 0)
        client.dele(1)
    finally:
        client.quit()
    return {
        "capabilities": capabilities,
        "count": count,
        "size": size,
        "body": b"\r\n".join(lines) + b"\r\n",
        "uidl": uidl,
        "top": top,
    }


async def run_poplib(running: RunningPOP3, implicit: bool) -> None:
    data = message("poplib", ".dot line\r\nplain line\r\n")
    uid = await running.deliver(data)
    inbox = running.services.store.mailbox_by_id(running.inbox_id())

    result = await asyncio.to_thread(
        poplib_session, running.port, running.client_context(), implicit
    )
    assert "UIDL" in result["capabilities"]
    assert result["count"] == 1
    assert result["size"] == len(data)
    assert result["body"] == data
    assert result["uidl"] == [f"1 {inbox.uidvalidity:08x}{uid:08x}".encode()]
    assert result["top"][-1] == b""
    assert running.services.store.uids(inbox.id) == []


async def test_poplib_over_stls(start_pop3: StartPOP3) -> None:
    await run_poplib(await start_pop3(tls="starttls"), implicit=False)


async def test_poplib_over_pop3s(start_pop3: StartPOP3) -> None:
    await run_poplib(await start_pop3(tls="implicit"), implicit=True)
