"""An asyncio client for clamd's INSTREAM command.

`ClamdClient.scan(source)` streams a message to clamd and returns a
`ScanResult`: clean, or infected with the signature name. It raises
`ClamdError` when clamd cannot be reached, does not reply within the
timeout, or replies with an error.

The protocol, from clamd(8) of ClamAV 1.4: the command `zINSTREAM\\0`, then
chunks, each a 4-byte unsigned length in network byte order followed by that
many bytes, then a zero-length chunk. clamd sends one NUL-terminated reply:
`stream: OK`, `stream: NAME FOUND`, or a text ending in `ERROR`. A stream
longer than clamd's StreamMaxLength gets `INSTREAM size limit exceeded.
ERROR` and clamd closes the connection, possibly before every chunk was
written, so the client reads the reply while it writes.

The message is read from a file object one chunk at a time, so memory use
does not grow with the message size.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

CHUNK_SIZE = 64 * 1024
# clamd's replies are short; a longer one means the peer is not clamd.
MAX_REPLY = 4096
# Signature names such as "Win.Test.EICAR_HDB-1" go into the SMTP reply, so
# any other character is replaced before a name leaves this module.
_SIGNATURE_UNSAFE = re.compile(r"[^A-Za-z0-9._:/+-]")
MAX_SIGNATURE_LENGTH = 200


class ClamdError(Exception):
    """clamd could not be reached, timed out or replied with an error."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The verdict of one scan: `signature` is "" for a clean message."""

    signature: str = ""

    @property
    def infected(self) -> bool:
        return bool(self.signature)


def parse_address(address: str) -> tuple[str, int] | str:
    """Split a clamd address into (host, port), or return a Unix socket path.

    Raises ValueError for an address that is neither an absolute path nor
    HOST:PORT (IPv6 as [HOST]:PORT).
    """
    if address.startswith("/"):
        return address
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit():
        raise ValueError(
            f"invalid clamd address {address!r}: expected a Unix socket path "
            "or HOST:PORT"
        )
    return host, int(port)


def parse_reply(reply: bytes) -> ScanResult:
    """Parse clamd's reply to INSTREAM; raise ClamdError for an error reply."""
    text = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
    if text == "stream: OK":
        return ScanResult()
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        name = text.removeprefix("stream: ").removesuffix(" FOUND").strip()
        name = _SIGNATURE_UNSAFE.sub("?", name)[:MAX_SIGNATURE_LENGTH]
        if name:
            return ScanResult(signature=name)
    raise ClamdError(f"clamd replied {text[:200]!r}")


class ClamdClient:
    """Scans streams with one clamd over a Unix socket or TCP.

    Each scan opens its own connection, so scans may run concurrently.
    """

    def __init__(
        self, address: str, timeout: float, chunk_size: int = CHUNK_SIZE
    ) -> None:
        self.address = parse_address(address)
        self.timeout = timeout
        self.chunk_size = chunk_size

    async def scan(self, source: BinaryIO) -> ScanResult:
        """Stream `source` from its current position to clamd and parse the reply.

        Raises ClamdError on a connection failure, a timeout (`timeout`
        seconds for the whole scan, connecting included) or an error reply.
        Reading `source` may raise OSError.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await self._scan(source)
        except TimeoutError:
            raise ClamdError(
                f"clamd scan timed out after {self.timeout:g} seconds"
            ) from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise ClamdError(f"clamd connection failed: {exc}") from exc

    async def ping(self) -> bool:
        """Send PING and return True when clamd replies PONG within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self._connect()
                try:
                    writer.write(b"zPING\0")
                    await writer.drain()
                    reply = await reader.readuntil(b"\0")
                finally:
                    writer.close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            return False
        return reply == b"PONG\0"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.address, str):
            return await asyncio.open_unix_connection(self.address, limit=MAX_REPLY)
        host, port = self.address
        return await asyncio.open_connection(host, port, limit=MAX_REPLY)

    async def _scan(self, source: BinaryIO) -> ScanResult:
        reader, writer = await self._connect()
        try:
            writer.write(b"zINSTREAM\0")
            # clamd may reply before the last chunk (size limit exceeded), so
            # the reply is read while the chunks are written.
            reply_task = asyncio.ensure_future(reader.readuntil(b"\0"))
            try:
                await self._send_chunks(source, writer, reply_task)
                reply = await reply_task
            finally:
                reply_task.cancel()
        finally:
            writer.close()
        return parse_reply(reply)

    async def _send_chunks(
        self,
        source: BinaryIO,
        writer: asyncio.StreamWriter,
        reply_task: asyncio.Future[bytes],
    ) -> None:
        while not reply_task.done():
            chunk = source.read(self.chunk_size)
            try:
                writer.write(struct.pack(">I", len(chunk)))
                writer.write(chunk)
                await writer.drain()
            except (BrokenPipeError, ConnectionResetError):
                # clamd closed the connection after replying, so the reply
                # read by reply_task is the result.
                return
            if not chunk:
                return
