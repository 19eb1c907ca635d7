"""Errors that POP3 handlers raise to end a command early."""

from __future__ import annotations


class POP3Error(Exception):
    """A failed command whose reply is known.

    `reply` is the full status line without CRLF, starting with `-ERR`. The
    session sends it, counts one error, and keeps the session open unless
    `close` is true.
    """

    def __init__(self, reply: str, *, close: bool = False) -> None:
        super().__init__(reply)
        self.reply = reply
        self.close = close


class SessionAborted(Exception):
    """The connection must be closed at once, without another reply.

    Raised when a reply is already partly sent (a RETR whose blob fails to
    read midway) or the TLS handshake after STLS fails, so no well-formed
    reply can follow. `reason` goes to the disconnect log line.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LineTooLong(Exception):
    """A client line longer than allowed.

    `consumed` is true when the line was read to its end, so the session can
    go on with the next line; false when the stream buffer filled up first.
    """

    def __init__(self, consumed: bool) -> None:
        super().__init__("line too long")
        self.consumed = consumed
