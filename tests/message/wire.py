"""A strict checker for IMAP BODYSTRUCTURE/ENVELOPE wire syntax, for tests."""

from __future__ import annotations

import re

_NUMBER = re.compile(rb"[0-9]+")


def _skip_value(data: bytes, pos: int) -> int:
    """Return the offset after the nstring, number or list at `pos`."""
    byte = data[pos : pos + 1]
    if byte == b"(":
        pos += 1
        first = True
        while data[pos : pos + 1] != b")":
            if not first:
                if data[pos : pos + 1] == b"(" and data[pos - 1 : pos] == b")":
                    pass  # multipart children follow each other without a space
                elif data[pos : pos + 1] != b" ":
                    raise AssertionError(
                        f"expected space at {pos}: {data[pos : pos + 20]!r}"
                    )
                else:
                    pos += 1
            pos = _skip_value(data, pos)
            first = False
        return pos + 1
    if byte == b'"':
        pos += 1
        while True:
            char = data[pos : pos + 1]
            if char == b"":
                raise AssertionError("unterminated quoted string")
            if char in (b"\r", b"\n") or char[0] >= 0x80:
                raise AssertionError(f"invalid byte {char!r} in quoted string at {pos}")
            if char == b"\\":
                if data[pos + 1 : pos + 2] not in (b'"', b"\\"):
                    raise AssertionError(f"invalid escape at {pos}")
                pos += 2
                continue
            if char == b'"':
                return pos + 1
            pos += 1
    if byte == b"{":
        close = data.index(b"}", pos)
        size = int(data[pos + 1 : close])
        if data[close + 1 : close + 3] != b"\r\n":
            raise AssertionError(f"literal without CRLF at {pos}")
        end = close + 3 + size
        if end > len(data):
            raise AssertionError("literal runs past the end")
        return end
    if data.startswith(b"NIL", pos):
        return pos + 3
    match = _NUMBER.match(data, pos)
    if match is None:
        raise AssertionError(f"unexpected {data[pos : pos + 20]!r} at {pos}")
    return match.end()


def assert_valid_body(data: bytes) -> None:
    """Raise AssertionError unless `data` is one well-formed parenthesised value."""
    if not data.startswith(b"("):
        raise AssertionError(f"value does not start with '(': {data[:20]!r}")
    end = _skip_value(data, 0)
    if end != len(data):
        raise AssertionError(
            f"trailing bytes after the value: {data[end : end + 20]!r}"
        )
