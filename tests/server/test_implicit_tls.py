"""Implicit-TLS listeners: handshakes that fail are logged, good ones serve."""

from __future__ import annotations

import asyncio
import logging
import ssl

from garrison.net import implicit_tls


def failures(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("event=tls_failed")
    ]


async def wait_for_failures(caplog, count: int) -> list[str]:
    for _ in range(50):
        if len(failures(caplog)) >= count:
            break
        await asyncio.sleep(0.05)
    return failures(caplog)


async def test_garbage_instead_of_hello_logged(garrison_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", garrison_server.port("imaps")
    )
    writer.write(b"a001 CAPABILITY\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    [line] = await wait_for_failures(caplog, 1)
    assert "listener=imaps" in line
    assert "ip=127.0.0.1" in line
    assert "error=" in line


async def test_handshake_timeout_logged(garrison_server, caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    monkeypatch.setattr(implicit_tls, "HANDSHAKE_TIMEOUT", 0.3)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", garrison_server.port("pop3s")
    )
    # The client sends nothing; the server gives up after the timeout.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    [line] = await wait_for_failures(caplog, 1)
    assert "listener=pop3s" in line
    assert 'error="handshake timed out"' in line


async def test_hello_sent_at_once_is_served(garrison_server) -> None:
    # The ClientHello arrives with the connection; none of it may be lost.
    context = ssl.create_default_context(cafile=garrison_server.ca_file)
    context.check_hostname = False
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", garrison_server.port("imaps"), ssl=context
    )
    greeting = await asyncio.wait_for(reader.readline(), 5)
    assert greeting.startswith(b"* OK")
    writer.write(b"a1 LOGOUT\r\n")
    await writer.drain()
    assert b"a1 OK" in await asyncio.wait_for(reader.read(), 5)
    writer.close()
