"""IMAP response encoding (RFC 3501 §7 and §9).

`Response` collects a burst of responses in one buffer so the session
writes and drains once per command. The helpers produce the wire form of
the basic data types: `string` picks a quoted string when that is safe and
a literal otherwise, `nstring` adds NIL, `mailbox` applies modified UTF-7.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

from garrison.imap import utf7

# RFC 3501 §9: QUOTED-CHAR is any 7-bit TEXT-CHAR; CR, LF, NUL and 8-bit
# bytes need a literal. Longer strings go as literals to keep lines short.
_QUOTABLE = frozenset(range(0x20, 0x7F)) | {0x09}
_MAX_QUOTED = 256
_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def quoted(data: bytes) -> bytes:
    """Return `data` as a quoted string; the caller checks it is quotable."""
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def string(data: bytes | str) -> bytes:
    """Encode a string as quoted when possible, else as a literal."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) <= _MAX_QUOTED and all(byte in _QUOTABLE for byte in data):
        return quoted(data)
    return literal(data)


def nstring(data: bytes | str | None) -> bytes:
    """Encode an nstring: NIL for None, else a string."""
    return b"NIL" if data is None else string(data)


def mailbox(name: str, utf8: bool = False) -> bytes:
    """Encode a mailbox name as a string, in modified UTF-7 unless `utf8`.

    RFC 9051 §5.1 and RFC 6855 §3: UTF-8 names once IMAP4rev2 or
    UTF8=ACCEPT is enabled.
    """
    if utf8:
        return string(name)
    return string(utf7.encode(name).encode("ascii"))


def flag_list(flags: Iterable[str]) -> bytes:
    """Encode flags as a parenthesised list, system flags first."""
    ordered = sorted(flags, key=lambda flag: (not flag.startswith("\\"), flag))
    return b"(" + " ".join(ordered).encode("ascii", "replace") + b")"


def date_time(when: datetime) -> bytes:
    """Encode an INTERNALDATE as RFC 3501 date-time ("17-Jul-1996 02:44:25 -0700")."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    text = (
        f'"{when.day:2d}-{_MONTHS[when.month - 1]}-{when.year:04d} '
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
        f'{sign}{minutes // 60:02d}{minutes % 60:02d}"'
    )
    return text.encode("ascii")


def response_text(text: str) -> bytes:
    """Make free text safe for resp-text: no CR, LF or 8-bit bytes."""
    cleaned = text.replace("\r", " ").replace("\n", " ")
    return cleaned.encode("ascii", "replace")


class Response:
    """One burst of responses, written with a single write and drain."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = bytearray()

    def untagged(self, data: bytes | str) -> None:
        """Add `* <data>`; str data must be ASCII."""
        if isinstance(data, str):
            data = data.encode("ascii")
        self.buffer += b"* " + data + b"\r\n"

    def raw(self, data: bytes) -> None:
        """Add bytes that already include their CRLF."""
        self.buffer += data

    def status(
        self, tag: str | None, status: str, text: str, code: str | None = None
    ) -> None:
        """Add a status response: `tag OK [CODE] text` (`*` when tag is None)."""
        line = bytearray((tag or "*").encode("ascii", "replace"))
        line += b" " + status.encode("ascii")
        if code:
            line += b" [" + code.encode("ascii", "replace") + b"]"
        line += b" " + response_text(text) + b"\r\n"
        self.buffer += line

    def __bool__(self) -> bool:
        return bool(self.buffer)

    async def flush(self, writer: asyncio.StreamWriter) -> None:
        """Write the buffer in one call, drain, and empty it."""
        if self.buffer:
            writer.write(bytes(self.buffer))
            self.buffer.clear()
            await writer.drain()
