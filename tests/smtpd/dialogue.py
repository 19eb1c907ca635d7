"""A scripted SMTP client for tests: send lines, expect reply codes.

    async with Dialogue.connect(port) as smtp:
        await smtp.expect(220)
        await smtp.command("EHLO client.example", 250)
        await smtp.command("MAIL FROM:<a@b.example>", 250, "2.1.0")

Works over plain TCP, STARTTLS (`starttls`) and implicit TLS (`tls=`).
Every read has a timeout, so a server that never replies fails the test
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

READ_TIMEOUT = 10.0


@dataclass
class ServerReply:
    """One (possibly multi-line) reply: its code and the text of each line."""

    code: int
    lines: list[str]

    @property
    def enhanced(self) -> str:
        """The enhanced status code at the start of the last line, if any."""
        first = self.lines[-1].split(" ", 1)[0] if self.lines else ""
        parts = first.split(".")
        if len(parts) == 3 and all(part.isdigit() for part in parts):
            return first
        return ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Dialogue:
    """The client side of one SMTP connection."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, port: int, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> AsyncIterator[Dialogue]:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, limit=1 << 20
        )
        dialogue = cls(reader, writer)
        try:
            yield dialogue
        finally:
            writer.close()
            with suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def send(self, data: bytes | str) -> None:
        """Send raw bytes (a str is UTF-8 encoded) without adding CRLF."""
        self.writer.write(data.encode("utf-8") if isinstance(data, str) else data)
        await self.writer.drain()

    async def read_reply(self, timeout: float = READ_TIMEOUT) -> ServerReply:
        """Read one reply; raise AssertionError on EOF or a malformed line."""
        lines = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            assert raw, f"connection closed by server after {lines!r}"
            assert raw.endswith(b"\r\n"), f"reply line without CRLF: {raw!r}"
            line = raw[:-2].decode("utf-8")
            code = int(line[:3])
            lines.append(line[4:])
            if line[3:4] == " " or len(line) == 3:
                return ServerReply(code, lines)
            assert line[3:4] == "-", f"malformed reply line: {line!r}"

    async def expect(
        self, code: int, enhanced: str | None = None, timeout: float = READ_TIMEOUT
    ) -> ServerReply:
        """Read one reply and assert its code (and enhanced code if given)."""
        reply = await self.read_reply(timeout)
        assert reply.code == code, f"expected {code}, got {reply.code} {reply.text!r}"
        if enhanced is not None:
            assert reply.enhanced == enhanced, (
                f"expected {enhanced}, got {reply.code} {reply.text!r}"
            )
        return reply

    async def command(
        self, line: str | bytes, code: int, enhanced: str | None = None
    ) -> ServerReply:
        """Send one command line (CRLF added) and expect a reply code."""
        data = line.encode("utf-8") if isinstance(line, str) else line
        await self.send(data + b"\r\n")
        return await self.expect(code, enhanced)

    async def starttls(self, context: ssl.SSLContext) -> None:
        """Send STARTTLS, expect 220 and run the TLS handshake."""
        await self.command("STARTTLS", 220, "2.0.0")
        await self.writer.start_tls(context)

    async def expect_closed(self, timeout: float = READ_TIMEOUT) -> None:
        """Assert that the server closes the connection without sending more."""
        data = await asyncio.wait_for(self.reader.read(), timeout)
        assert data == b"", f"expected EOF, got {data!r}"

    async def hello(self, name: str = "client.example") -> ServerReply:
        """Read the greeting and send EHLO; return the EHLO reply."""
        await self.expect(220)
        return await self.command(f"EHLO {name}", 250)
