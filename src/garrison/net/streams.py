"""Helpers over asyncio streams that every protocol server needs.

The STARTTLS command injection attack (CVE-2011-0411; RFC 3207 §4,
RFC 3501 §6.2.1, RFC 2595 §4) plants plaintext behind STARTTLS so that the
server reads it as a command after the handshake. Servers must drop every
byte received before the handshake. `asyncio.StreamReader` has no public
call to see or drop its buffer, so these helpers use its private `_buffer`
(a bytearray in CPython 3.4 to 3.13, used by uvloop too); a test pins that.
"""

from __future__ import annotations

import asyncio


def buffered_size(reader: asyncio.StreamReader) -> int:
    """Return how many received bytes the reader holds unread."""
    buffer = getattr(reader, "_buffer", None)
    return len(buffer) if buffer is not None else 0


def discard_buffered(reader: asyncio.StreamReader) -> int:
    """Drop every received byte the reader holds unread; return how many."""
    buffer = getattr(reader, "_buffer", None)
    if buffer is None:
        return 0
    dropped = len(buffer)
    buffer.clear()
    return dropped
