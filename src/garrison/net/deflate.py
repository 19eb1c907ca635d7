"""Raw DEFLATE (RFC 1951) over asyncio streams, for IMAP COMPRESS (RFC 4978).

`DeflateReader` and `DeflateWriter` wrap a connection's StreamReader and
StreamWriter once compression starts. They sit above TLS when TLS is on,
so data is compressed first and then encrypted.

The writer ends every `write` with a sync flush (Z_SYNC_FLUSH), so the
peer can inflate each response burst as soon as it arrives.
The reader inflates at most `max_chunk` bytes per call and keeps the rest
of the input for the next call, so a small compressed input that expands
enormously costs memory in proportion to what the caller reads, not to the
expansion.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

# RFC 4978 uses raw DEFLATE (RFC 1951) without the zlib header; the window
# is 2^15 bytes.
_WBITS = -15


class DeflateError(ConnectionError):
    """The peer sent data that is not a valid DEFLATE stream."""


class DeflateReader:
    """The `read` half of a StreamReader, inflating what the peer sends."""

    def __init__(self, reader: asyncio.StreamReader, pending: bytes = b"") -> None:
        self._reader = reader
        self._inflater = zlib.decompressobj(_WBITS)
        # Compressed bytes already received before the switch.
        self._input = pending

    async def read(self, max_chunk: int = 65536) -> bytes:
        """Return up to `max_chunk` inflated bytes; b"" at end of stream."""
        while True:
            data = self._input or self._inflater.unconsumed_tail
            self._input = b""
            if not data:
                data = await self._reader.read(max_chunk)
                if not data:
                    return b""
            try:
                output = self._inflater.decompress(data, max_chunk)
            except zlib.error as exc:
                raise DeflateError(f"invalid DEFLATE data: {exc}") from None
            if output:
                return output


class DeflateWriter:
    """A StreamWriter stand-in that deflates everything written."""

    def __init__(self, writer: asyncio.StreamWriter, level: int = 6) -> None:
        self._writer = writer
        self._deflater = zlib.compressobj(level, zlib.DEFLATED, _WBITS)
        self.bytes_in = 0
        self.bytes_out = 0

    def write(self, data: bytes) -> None:
        compressed = self._deflater.compress(data) + self._deflater.flush(
            zlib.Z_SYNC_FLUSH
        )
        self.bytes_in += len(data)
        self.bytes_out += len(compressed)
        self._writer.write(compressed)

    async def drain(self) -> None:
        await self._writer.drain()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._writer.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._writer.is_closing()

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()
