"""Read one IMAP command, with its literals, from an asyncio stream.

`CommandReader.read_command` returns `(lines, literals)` in the shape that
`garrison.imap.parser.parse_command` expects. Every limit is checked before
the bytes are read, so a client can never make the server buffer more than
the limit:

- a line (without its literals) is at most `max_line_length` bytes, and so
  is the sum of the lines of one command;
- each literal, and the sum of the literals of one command, is at most the
  `max_literal_size` passed for this command (the session passes a small
  limit before login);
- a literal larger than `spool_threshold` is written to an unlinked
  temporary file instead of memory.

RFC 3501 §7.5: a synchronising literal `{n}` gets `+ Ready` only when it is
accepted; otherwise `LiteralTooBig(fatal=False)` is raised, the client sends
nothing more for that command and the connection stays usable. RFC 7888 §4:
a non-synchronising literal `{n+}` over the limit has already been sent, so
`LiteralTooBig(fatal=True)` is raised and the session must answer BAD and
close the connection.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from garrison.imap.command import LiteralData, SpooledLiteral
from garrison.net.deflate import DeflateReader
from garrison.net.streams import discard_buffered

# A literal announcement ends the line: "{" number ["+"] "}".
_LITERAL_AT_END = re.compile(rb"\{([0-9]{1,20})(\+?)\}\Z")
_TAG = re.compile(rb"^([^ \r\n(){%*\"\\+]+)")
_READ_SIZE = 65536


class ConnectionClosed(Exception):
    """The client closed the connection (possibly in the middle of a command)."""


class LineTooLong(Exception):
    """A command line exceeded the limit; the session replies BAD and closes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"command line longer than {limit} bytes")
        self.limit = limit


class LiteralTooBig(Exception):
    """A literal announcement exceeded the limit.

    `tag` is the command's tag when it could be read, `first_line` the first
    line of the command (for the session to tell APPEND from the rest), and
    `fatal` is True when the connection must be closed after the reply.
    """

    def __init__(
        self, size: int, limit: int, tag: str | None, first_line: bytes, fatal: bool
    ):
        super().__init__(
            f"literals of {size} bytes in one command exceed the limit of {limit} bytes"
        )
        self.size = size
        self.limit = limit
        self.tag = tag
        self.first_line = first_line
        self.fatal = fatal


def command_tag(line: bytes) -> str | None:
    """Return the tag at the start of a command line, or None when it has none."""
    match = _TAG.match(line)
    return match.group(1).decode("ascii", "replace") if match else None


class CommandReader:
    """A buffered reader of IMAP command lines and literals over a StreamReader."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        send_continuation: Callable[[bytes], Awaitable[None]],
        *,
        max_line_length: int,
        spool_threshold: int = 1 << 20,
    ) -> None:
        self._reader: asyncio.StreamReader | DeflateReader = reader
        self._send_continuation = send_continuation
        self._buffer = bytearray()
        self.max_line_length = max_line_length
        self.spool_threshold = spool_threshold

    async def _fill(self) -> None:
        data = await self._reader.read(_READ_SIZE)
        if not data:
            raise ConnectionClosed()
        self._buffer += data

    async def read_line(self, limit: int | None = None) -> bytes:
        """Return the next line without its CRLF (a bare LF is accepted too).

        Raises `LineTooLong` once more than `limit` bytes arrive without a
        line end, so the buffer never grows past the limit plus one read.
        """
        limit = self.max_line_length if limit is None else limit
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if len(line) > limit:
                    raise LineTooLong(limit)
                return line
            scanned = len(self._buffer)
            if scanned > limit + 1:
                raise LineTooLong(limit)
            await self._fill()

    async def _read_literal(self, size: int) -> LiteralData:
        spool = SpooledLiteral() if size > self.spool_threshold else None
        chunks = bytearray()
        remaining = size
        try:
            while remaining:
                if not self._buffer:
                    await self._fill()
                take = min(remaining, len(self._buffer))
                if spool is not None:
                    spool.write(bytes(self._buffer[:take]))
                else:
                    chunks += self._buffer[:take]
                del self._buffer[:take]
                remaining -= take
        except BaseException:
            if spool is not None:
                spool.close()
            raise
        return spool if spool is not None else bytes(chunks)

    async def read_command(
        self, max_literal_size: int
    ) -> tuple[list[bytes], list[LiteralData]]:
        """Read one command: its lines and the literal after each line but the last.

        Raises `ConnectionClosed`, `LineTooLong` or `LiteralTooBig`. On any
        error, spooled literals read so far are closed.
        """
        lines: list[bytes] = []
        literals: list[LiteralData] = []
        total_line_bytes = 0
        total_literal_bytes = 0
        try:
            while True:
                line = await self.read_line(self.max_line_length - total_line_bytes)
                total_line_bytes += len(line)
                lines.append(line)
                match = _LITERAL_AT_END.search(line)
                if match is None:
                    return lines, literals
                size = int(match.group(1))
                synchronising = not match.group(2)
                total_literal_bytes += size
                if total_literal_bytes > max_literal_size:
                    raise LiteralTooBig(
                        total_literal_bytes,
                        max_literal_size,
                        command_tag(lines[0]),
                        lines[0],
                        fatal=not synchronising,
                    )
                if synchronising:
                    # RFC 3501 §7.5: the continuation request invites the literal.
                    await self._send_continuation(b"+ Ready for literal data\r\n")
                literals.append(await self._read_literal(size))
        except BaseException:
            for literal in literals:
                if isinstance(literal, SpooledLiteral):
                    literal.close()
            raise

    def discard_buffered(self) -> None:
        """Drop every byte received but not yet read.

        RFC 3207 §4 and RFC 3501 §6.2.1: plaintext that arrived after
        STARTTLS and before the handshake must not be taken as a command
        (the STARTTLS command injection attack).
        """
        self._buffer.clear()
        discard_buffered(self._reader)

    def start_inflate(self) -> None:
        """Inflate every byte read from now on (RFC 4978 COMPRESS=DEFLATE).

        Bytes already buffered arrived after the COMPRESS command, so they
        are compressed too and go to the inflater first.
        """
        pending = bytes(self._buffer)
        self._buffer.clear()
        self._reader = DeflateReader(self._reader, pending)

    @property
    def has_buffered_data(self) -> bool:
        return bool(self._buffer)
