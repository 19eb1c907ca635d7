import asyncio
import logging

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
