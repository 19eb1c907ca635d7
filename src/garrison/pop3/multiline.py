"""Encoding of message bytes as a POP3 multi-line reply body, in chunks.

RFC 1939 §3: every line of a multi-line reply ends with CRLF, a line that
starts with "." gets one more "." in front (byte-stuffing), and the reply
ends with a line holding a single ".". `MultilineEncoder` does this over a
stream of chunks with state carried between them, so a RETR of a large
message keeps at most one chunk in memory. `TopCutter` cuts a
message after its header and a given number of body lines, for TOP
(RFC 1939 §7).
"""

from __future__ import annotations

import re

# A line feed not preceded by a carriage return. Stored messages normally end
# every line with CRLF, but an IMAP APPEND may have stored bare LFs.
_BARE_LF = re.compile(rb"(?<!\r)\n")


class MultilineEncoder:
    """Byte-stuff and CRLF-normalise a message, one chunk at a time.

    Call `encode` for each chunk in order, then `finish` once; concatenated,
    their outputs form the reply body including the terminating ".\\r\\n".
    A bare LF becomes CRLF. A bare CR not followed by LF is passed through.
    """

    def __init__(self) -> None:
        self._at_line_start = True
        self._previous_ended_with_cr = False

    def encode(self, chunk: bytes) -> bytes:
        """Return the encoded form of the next chunk of the message."""
        if not chunk:
            return b""

        # The look-behind of _BARE_LF cannot see the previous chunk, so an LF
        # that completes a CRLF split across two chunks is kept out of it.
        if self._previous_ended_with_cr and chunk[:1] == b"\n":
            data = b"\n" + _BARE_LF.sub(b"\r\n", chunk[1:])
        else:
            data = _BARE_LF.sub(b"\r\n", chunk)

        # RFC 1939 §3: a line starting with the termination octet is
        # byte-stuffed by prepending one more.
        data = data.replace(b"\n.", b"\n..")
        if self._at_line_start and data[:1] == b".":
            data = b"." + data

        self._at_line_start = data.endswith(b"\n")
        self._previous_ended_with_cr = chunk.endswith(b"\r")
        return data

    def finish(self) -> bytes:
        """Return the bytes that end the reply: a line break if needed, then "."."""
        if self._at_line_start:
            return b".\r\n"
        if self._previous_ended_with_cr:
            return b"\n.\r\n"
        return b"\r\n.\r\n"


class TopCutter:
    """Cut a message after its header, the blank line, and `body_lines` lines.

    Call `cut` on each chunk in order and send what it returns; once `done`
    is true the rest of the message is not needed. A message without a blank
    line after its header is passed through whole, as it has no body.
    """

    def __init__(self, body_lines: int) -> None:
        self._body_lines_left = body_lines
        self._in_header = True
        # The start of the current line while it is still b"" or b"\r", so it
        # may turn out to be the blank line that ends the header; None once it
        # contains anything else. Lines can span chunks.
        self._line_start: bytes | None = b""
        self.done = False

    def cut(self, chunk: bytes) -> bytes:
        """Return the prefix of `chunk` that belongs to the reply."""
        if self.done:
            return b""
        if not self._in_header and self._body_lines_left == 0:
            self.done = True
            return b""

        position = 0
        while True:
            newline = chunk.find(b"\n", position)
            if newline == -1:
                self._line_start = self._extend_line_start(chunk[position:])
                return chunk

            if self._in_header:
                line_start = self._extend_line_start(chunk[position:newline])
                if line_start is not None:
                    self._in_header = False
            else:
                self._body_lines_left -= 1

            self._line_start = b""
            position = newline + 1
            if not self._in_header and self._body_lines_left == 0:
                self.done = True
                return chunk[:position]

    def _extend_line_start(self, more: bytes) -> bytes | None:
        if self._line_start is None:
            return None
        combined = self._line_start + more
        return combined if combined in (b"", b"\r") else None
