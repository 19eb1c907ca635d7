"""Sans-I/O parser for the replies an SMTP server sends (the client side).

`ReplyReader` takes received bytes in chunks of any size and returns each
complete reply as a `Reply` (from `garrison.smtp.replies`): the basic code,
the enhanced status code when the first line carries one (RFC 2034 §3),
and the text of all lines joined with "\\n". `parse_ehlo_keywords` turns an
EHLO reply into a dict of extension keywords.
"""

from __future__ import annotations

import re

from garrison.smtp.replies import Reply

# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; servers send
# longer ones, so the reader allows this much before it gives up.
MAX_REPLY_LINE = 8192
# A multi-line reply with more lines than this is treated as an attack.
MAX_REPLY_LINES = 1000

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


class ReplySyntaxError(ValueError):
    """The server sent bytes that are not an SMTP reply."""


class ReplyReader:
    """Collects reply lines until a reply is complete (RFC 5321 §4.2.1)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._lines: list[str] = []
        self._code: int | None = None

    def feed(self, data: bytes) -> list[Reply]:
        """Consume received bytes and return every reply they complete.

        Raises ReplySyntaxError for a line without a 3-digit code, a code
        that changes within one reply, or a line or reply over the limits.
        """
        self._buffer += data
        replies: list[Reply] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY_LINE:
                    raise ReplySyntaxError("reply line too long")
                return replies
            raw, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            reply = self._line(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
            if reply is not None:
                replies.append(reply)

    def _line(self, line: str) -> Reply | None:
        if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
            raise ReplySyntaxError(f"invalid reply line {line[:40]!r}")
        code = int(line[:3])
        if self._code is not None and code != self._code:
            raise ReplySyntaxError("reply code changed within a multi-line reply")
        self._code = code
        self._lines.append(line[4:])
        if len(self._lines) > MAX_REPLY_LINES:
            raise ReplySyntaxError("too many lines in one reply")
        if line[3:4] == "-":
            return None

        lines, self._lines, self._code = self._lines, [], None
        return _make_reply(code, lines)


def _make_reply(code: int, lines: list[str]) -> Reply:
    enhanced = ""
    match = _ENHANCED.match(lines[0])
    # RFC 3463 §2: the class digit of the enhanced code matches the reply's.
    if match is not None and match.group(1) == str(code)[0]:
        enhanced = match.group(0).strip()
        lines = [_strip_enhanced(line) for line in lines]
    return Reply(code, enhanced, "\n".join(lines))


def _strip_enhanced(line: str) -> str:
    match = _ENHANCED.match(line)
    return line[match.end() :] if match else line


def parse_ehlo_keywords(reply: Reply) -> dict[str, str]:
    """Return the EHLO extension keywords, upper-cased, with their parameters.

    RFC 5321 §4.1.1.1: the first line is the server's name; every further
    line is `ehlo-keyword *(SP ehlo-param)`.
    """
    keywords: dict[str, str] = {}
    for line in reply.text.split("\n")[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            keywords[keyword.upper()] = params.strip()
    return keywords
