"""Sans-I/O codecs for message content: DATA dot-stuffing and line checks.

- `DataDecoder` consumes the bytes that follow a DATA command in chunks of
  any size, finds the `CRLF.CRLF` end (RFC 5321 §4.1.1.4), removes the
  dot-stuffing (RFC 5321 §4.5.2) and checks every line.
- `LineChecker` applies the same line checks to BDAT content (RFC 3030),
  which is not dot-stuffed.
- `dot_stuff` is the client-side encoder.

Both decoders run in bounded memory: they keep at most one incomplete line
(capped at the line length limit) between calls, and they work on whole
chunks with `bytes` methods instead of a Python loop per line.

Content errors do not stop the decoder. It keeps reading to the end of the
message so that the session stays in step with the client, and reports
the first error in `error`. The caller then rejects the message and
discards what it wrote.
"""

from __future__ import annotations

import enum

END_OF_DATA = b"\r\n.\r\n"


class ContentError(enum.Enum):
    """The reason message content was rejected."""

    # A CR not followed by LF, or an LF not preceded by CR.  Such line ends
    # are how "SMTP smuggling" hides a second message inside the first.
    BARE_LINE_ENDING = "bare CR or LF"
    # RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with its CRLF.
    LINE_TOO_LONG = "line too long"
    # RFC 1870 §6: the message exceeds the advertised SIZE limit.
    TOO_BIG = "message too big"


class LineChecker:
    """Checks line endings, line length and total size of content chunks.

    `feed` takes content in chunks of any size and returns nothing; the
    first violation is kept in `error`. `size` counts every octet fed.
    Call `finish` after the last chunk, because the final line may end
    without CRLF (BDAT content need not end with a line break).
    """

    def __init__(self, max_line_length: int, max_size: int) -> None:
        self.max_line_length = max_line_length
        self.max_size = max_size
        self.size = 0
        self.error: ContentError | None = None
        # Length of the current, unfinished line without its line end.  A CR
        # at the end of a chunk sets _pending_cr, because the next chunk may
        # start with the LF that completes the CRLF.
        self._line_length = 0
        self._pending_cr = False

    def feed(self, data: bytes) -> None:
        """Check one chunk of content."""
        self.size += len(data)
        if self.error is not None or not data:
            return
        if self.size > self.max_size:
            self.error = ContentError.TOO_BIG
            return

        if self._pending_cr:
            if data[0] != 0x0A:
                self.error = ContentError.BARE_LINE_ENDING
                return
            # The CRLF that the previous chunk started ends a line here.
            self._pending_cr = False
            self._line_length = 0
            data = data[1:]

        complete_end = data.rfind(b"\r\n") + 2 if b"\r\n" in data else 0
        complete, tail = data[:complete_end], data[complete_end:]
        if complete:
            if not _only_crlf(complete):
                self.error = ContentError.BARE_LINE_ENDING
                return
            first_line = complete.find(b"\r\n") + self._line_length
            if (
                first_line + 2 > self.max_line_length
                or _longest_line(complete) + 2 > self.max_line_length
            ):
                self.error = ContentError.LINE_TOO_LONG
                return
            self._line_length = 0

        if tail.endswith(b"\r"):
            self._pending_cr = True
            tail = tail[:-1]
        if b"\r" in tail or b"\n" in tail:
            self.error = ContentError.BARE_LINE_ENDING
            return
        self._line_length += len(tail)
        # The line is already too long even before its CRLF arrives.
        if self._line_length + 2 > self.max_line_length:
            self.error = ContentError.LINE_TOO_LONG

    def finish(self) -> None:
        """Check the end of the content: a lone CR at the very end is bare."""
        if self.error is None and self._pending_cr:
            self.error = ContentError.BARE_LINE_ENDING


class DataDecoder:
    """Decodes the DATA stream: finds the end, removes dot-stuffing, checks lines.

    Call `feed(chunk)` with the bytes read after the 354 reply. It returns
    the decoded content to store (possibly empty). When the end line
    `.CRLF` has been seen, `done` is True and `trailing` contains the bytes
    that followed it (pipelined commands). After an error, `feed` returns
    nothing more but still looks for the end. `size` is the decoded size.

    Only CRLF.CRLF ends the data. LF.LF, CR.CR and mixtures are content,
    and because they contain bare line endings they also set `error`.
    """

    def __init__(self, max_line_length: int, max_size: int) -> None:
        self.max_line_length = max_line_length
        self.max_size = max_size
        self.size = 0
        self.error: ContentError | None = None
        self.done = False
        self.trailing = b""
        # Bytes after the last CRLF seen: the start of an unfinished line.
        self._pending = b""
        # Whether _pending begins at the start of a line.  It stays True
        # until an overlong line forces the decoder to drop bytes.
        self._at_line_start = True

    def feed(self, data: bytes) -> bytes:
        """Consume a chunk and return the decoded content it completes."""
        if self.done:
            self.trailing += data
            return b""

        buffer = self._pending + data if self._pending else data
        if self._at_line_start and buffer.startswith(b".\r\n"):
            # The end line directly at a line start: the CRLF before it was
            # either the previous chunk's last line end or the DATA command's.
            return self._finish(b"", buffer[3:])

        end = buffer.find(END_OF_DATA)
        if end >= 0:
            # RFC 5321 §4.1.1.4: the first CRLF of CRLF.CRLF ends the last line.
            return self._finish(buffer[: end + 2], buffer[end + 5 :])

        cut = buffer.rfind(b"\r\n")
        if cut < 0:
            self._keep_unfinished_line(buffer)
            return b""

        self._pending = buffer[cut + 2 :]
        decoded = self._decode_lines(buffer[: cut + 2])
        self._at_line_start = True
        self._keep_unfinished_line(self._pending)
        return decoded

    def _finish(self, lines: bytes, trailing: bytes) -> bytes:
        decoded = self._decode_lines(lines) if lines else b""
        self.done = True
        self.trailing = trailing
        self._pending = b""
        return decoded

    def _keep_unfinished_line(self, line: bytes) -> None:
        # A line without CRLF that already reaches the limit is too long.  Keep
        # only its last bytes, enough to match a CRLF.CRLF that starts there.
        if len(line) + 1 <= self.max_line_length:
            self._pending = line
            return
        self._set_error(ContentError.LINE_TOO_LONG)
        self._pending = line[-4:]
        self._at_line_start = False

    def _decode_lines(self, lines: bytes) -> bytes:
        """Check and unstuff whole lines; `lines` ends with CRLF."""
        if self.error is not None:
            return b""
        if not self._at_line_start:
            # The first line is the end of an overlong line already rejected.
            return b""
        if not _only_crlf(lines):
            self._set_error(ContentError.BARE_LINE_ENDING)
            return b""
        if len(lines) > self.max_line_length and (
            _longest_line(lines) + 2 > self.max_line_length
        ):
            self._set_error(ContentError.LINE_TOO_LONG)
            return b""

        # RFC 5321 §4.5.2: a line that starts with "." loses that first ".".
        if lines[0] == 0x2E:
            lines = lines[1:]
        if b"\r\n." in lines:
            lines = lines.replace(b"\r\n.", b"\r\n")

        self.size += len(lines)
        if self.size > self.max_size:
            self._set_error(ContentError.TOO_BIG)
            return b""
        return lines

    def _set_error(self, error: ContentError) -> None:
        if self.error is None:
            self.error = error


def dot_stuff(content: bytes) -> bytes:
    """Encode content for DATA: double each leading "." and add the end line.

    `content` must use CRLF line endings. A final CRLF is added when the
    content does not end with one (RFC 5321 §4.1.1.4).
    """
    if content.startswith(b"."):
        content = b"." + content
    content = content.replace(b"\r\n.", b"\r\n..")
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return content + b".\r\n"


def _only_crlf(data: bytes) -> bool:
    """Return whether every CR and LF in `data` is part of a CRLF pair."""
    pairs = data.count(b"\r\n")
    return data.count(b"\r") == pairs and data.count(b"\n") == pairs


def _longest_line(data: bytes) -> int:
    """Length of the longest CRLF-separated line, without the CRLF."""
    return max(map(len, data.split(b"\r\n")))
