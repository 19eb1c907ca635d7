import asyncio
import logging
import socket
import ssl

import pytest


async def test_plaintext_after_starttls_logs_no_error(
    imap_server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="garrison.imap")
    reader, writer = await asyncio.open_connection("127.0.0.1", imap_server.port("imap"))
    await reader.readline()
    writer.write(b"a STARTTLS\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"a OK")
    writer.write(b"hello, this is not a TLS ClientHello\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    writer.close()
    for _ in range(50):
        if any("event=disconnect" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    assert any("event=tls_failed" in r.getMessage() for r in caplog.records)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def starttls_round(port: int, context: ssl.SSLContext) -> bytes:
    """Send the ClientHello right after the OK to STARTTLS; return the NOOP reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        file = sock.makefile("rb")
        file.readline()
        sock.sendall(b"a STARTTLS\r\n")
        assert file.readline().startswith(b"a OK")
        with context.wrap_socket(sock) as secure:
            secure.sendall(b"b NOOP\r\n")
            return secure.makefile("rb").readline()


async def test_hello_right_after_ok_not_lost(imap_server) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for _ in range(30):
        reply = await asyncio.to_thread(starttls_round, imap_server.port("imap"), context)
        assert reply.startswith(b"b OK"), reply
