"""Helpers over asyncio streams that every protocol server needs.

The STARTTLS command injection attack (CVE-2011-0411; RFC 3207 §4,
RFC 3501 §6.2.1, RFC 2595 §4) plants plaintext behind STARTTLS so that the
server reads it as a command after the handshake. Servers must drop every
byte received before the handshake. `asyncio.StreamReader` has no public
call to see or drop its buffer, so these helpers use its private `_buffer`,
a bytearray in CPython 3.11 under both asyncio and uvloop. A test in
tests/net pins that.
"""

from __future__ import annotations

import asyncio


def buffered_size(reader: asyncio.StreamReader) -> int:
    """Return the number of received bytes in the reader's buffer that were not read."""
    buffer = getattr(reader, "_buffer", None)
    return len(buffer) if buffer is not None else 0


def discard_buffered(reader: asyncio.StreamReader) -> int:
    """Drop the unread bytes in the reader's buffer and return their number."""
    buffer = getattr(reader, "_buffer", None)
    if buffer is None:
        return 0
    dropped = len(buffer)
    buffer.clear()
    return dropped
