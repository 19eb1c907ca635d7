"""A scripted POP3 client for tests: send a line, check the reply.

Every read has a timeout, so a server that stops replying fails the test
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

READ_TIMEOUT = 5.0


class POP3Dialogue:
    """One client connection to a POP3 server under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, tls: ssl.SSLContext | None = None
    ) -> POP3Dialogue:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, limit=1024 * 1024
        )
        return cls(reader, writer)

    async def read_line(self) -> str:
        """Return the next reply line without CRLF; fail on end of stream."""
        line = await asyncio.wait_for(self.reader.readline(), READ_TIMEOUT)
        assert line.endswith(b"\r\n"), f"reply line without CRLF: {line!r}"
        return line[:-2].decode("utf-8")

    def send(self, line: str | bytes) -> None:
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.writer.write(data + b"\r\n")

    async def command(self, line: str | bytes) -> str:
        """Send one command line and return the status line of its reply."""
        self.send(line)
        return await self.read_line()

    async def ok(self, line: str | bytes) -> str:
        reply = await self.command(line)
        assert reply.startswith("+OK"), f"{line!r} got {reply!r}"
        return reply

    async def err(self, line: str | bytes, code: str | None = None) -> str:
        reply = await self.command(line)
        assert reply.startswith("-ERR"), f"{line!r} got {reply!r}"
        if code is not None:
            assert reply.startswith(f"-ERR {code}"), f"{line!r} got {reply!r}"
        return reply

    async def read_body(self) -> bytes:
        """Read a multi-line reply body up to "." and undo the byte-stuffing."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), READ_TIMEOUT)
            assert line.endswith(b"\r\n"), f"body line without CRLF: {line!r}"
            if line == b".\r\n":
                return b"".join(lines)
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)

    async def read_lines(self) -> list[str]:
        """Read a multi-line reply body as text lines without CRLF."""
        body = await self.read_body()
        return [line.decode("utf-8") for line in body.split(b"\r\n")[:-1]]

    async def multiline(self, line: str) -> tuple[str, list[str]]:
        """Send a command expected to succeed with a multi-line reply."""
        status = await self.ok(line)
        return status, await self.read_lines()

    async def log_in(self, user: str, password: str) -> str:
        await self.ok(f"USER {user}")
        return await self.ok(f"PASS {password}")

    async def start_tls(self, context: ssl.SSLContext) -> None:
        await self.writer.start_tls(context)

    async def at_eof(self) -> bool:
        """Wait until the server closes the connection; True if it did."""
        try:
            data = await asyncio.wait_for(self.reader.read(), READ_TIMEOUT)
        except (ConnectionError, ssl.SSLError):
            return True
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
