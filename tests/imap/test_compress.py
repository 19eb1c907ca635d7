"""COMPRESS=DEFLATE (RFC 4978) over plain TCP and over implicit TLS."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from tests.imap.conftest import ALICE, Dialogue, deliver, make_message


class DeflateClient:
    """The client side of a compressed connection, built from raw zlib."""

    def __init__(self, dialogue: Dialogue) -> None:
        self.reader = dialogue.reader
        self.writer = dialogue.writer
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        self.received = bytearray()

    async def command(self, line: bytes) -> bytes:
        """Send one tagged command and return everything up to its tagged reply."""
        tag = line.split(b" ", 1)[0]
        data = self.deflater.compress(line + b"\r\n")
        self.writer.write(data + self.deflater.flush(zlib.Z_SYNC_FLUSH))
        await self.writer.drain()
        while b"\r\n" + tag + b" " not in b"\r\n" + self.received:
            chunk = await asyncio.wait_for(self.reader.read(65536), 10)
            assert chunk, "connection closed"
            self.received += self.inflater.decompress(chunk)
        end = self.received.index(b"\r\n", self.received.index(tag + b" ")) + 2
        reply = bytes(self.received[:end])
        del self.received[:end]
        return reply


@pytest.mark.parametrize("port_name", ["imap", "imaps"])
async def test_compress_both_directions(imap_server, port_name):
    tls = imap_server.tls_client_context() if port_name == "imaps" else None
    dialogue = await Dialogue.open(imap_server.port(port_name), tls=tls)
    try:
        await dialogue.login()
        await deliver(imap_server, ALICE, make_message("squeeze", body="z" * 5000))
        reply = await dialogue.command("COMPRESS DEFLATE")
        assert reply.text == b"DEFLATE active"
        client = DeflateClient(dialogue)
        answer = await client.command(b"a1 SELECT INBOX")
        assert b"* 1 EXISTS" in answer
        assert answer.endswith(b"a1 OK [READ-WRITE] SELECT completed\r\n")
        answer = await client.command(b"a2 FETCH 1 BODY.PEEK[TEXT]")
        assert b"z" * 5000 in answer
        answer = await client.command(b"a3 COMPRESS DEFLATE")
        assert b"a3 NO [COMPRESSIONACTIVE]" in answer
        answer = await client.command(b"a4 CAPABILITY")
        assert b"COMPRESS=DEFLATE" not in answer
        answer = await client.command(b"a5 LOGOUT")
        assert b"* BYE" in answer
    finally:
        await dialogue.close()


async def test_compress_rejects_unknown_algorithm_and_preauth(imap):
    await imap.command("COMPRESS DEFLATE", expect="BAD")
    await imap.login()
    await imap.command("COMPRESS LZW", expect="BAD")
    await imap.command("NOOP")


async def test_compress_invalid_stream_closes_connection(imap_server, alice):
    await alice.command("COMPRESS DEFLATE")
    # 0xff starts a reserved DEFLATE block type, which zlib rejects.
    alice.writer.write(b"\xff\xff\xff\xff")
    await alice.writer.drain()
    data = await asyncio.wait_for(alice.reader.read(), 10)
    assert data == b""
