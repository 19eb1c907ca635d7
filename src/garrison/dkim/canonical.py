"""Relaxed canonicalisation for DKIM (RFC 6376 §3.4.2 and §3.4.4).

`relaxed_header` turns one header field into its canonical form, and
`RelaxedBodyHash` computes the body hash over a message body that arrives
in chunks of any size, so a large message is never held in memory. Input
lines end in CRLF; the SMTP server rejects bare CR and LF before a message
gets here.
"""

from __future__ import annotations

import hashlib
import re

_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r\n(?=[ \t])")


def relaxed_header(field: bytes) -> bytes:
    """Return the relaxed form of one header field, `field` without its final CRLF.

    RFC 6376 §3.4.2: lower-case the name, unfold, reduce each run of WSP to
    one space, and drop WSP at the end of the value and around the colon.
    """
    name, _, value = field.partition(b":")
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value + b"\r\n"


class RelaxedBodyHash:
    """SHA-256 of a message body in relaxed canonical form, fed in chunks."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._partial = b""
        self._empty_lines = 0

    def update(self, data: bytes) -> None:
        """Add the next chunk of the body; a line may span chunks."""
        lines = (self._partial + data).split(b"\r\n")
        self._partial = lines.pop()
        for line in lines:
            self._add_line(line)

    def _add_line(self, line: bytes) -> None:
        # RFC 6376 §3.4.4: drop WSP at the end of each line and reduce the
        # other runs of WSP to one space.
        line = _WSP_RUN.sub(b" ", line).rstrip(b" ")
        if not line:
            # Empty lines at the end of the body are ignored, so they are
            # held back until a line with content follows them.
            self._empty_lines += 1
            return
        if self._empty_lines:
            self._hash.update(b"\r\n" * self._empty_lines)
            self._empty_lines = 0
        self._hash.update(line + b"\r\n")

    def digest(self) -> bytes:
        """Return the hash; call once, after the last chunk."""
        if self._partial:
            # RFC 6376 §3.4.4: a body that does not end in CRLF gets one.
            self._add_line(self._partial)
            self._partial = b""
        return self._hash.digest()
