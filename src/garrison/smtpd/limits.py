"""Per-session denial-of-service limits of the SMTP server.

`Connection` enforces the time limits while it waits for input: the
session deadline (`smtp.max_session_duration`) and, while message content
is being read, the minimum data rate (`smtp.min_data_rate` bytes per
second over windows of `smtp.data_rate_window` seconds). Each raises a
`LimitExceeded` subclass, which is a TimeoutError, so the code that
already handles timeouts (dropping a half-received message) handles it.

`log_limit` writes the `event=limit` line, in the format that
`garrison.net.limits` uses for connection limits, once per event.
"""

from __future__ import annotations

import logging

from garrison.observability.log import event

log = logging.getLogger("garrison.smtpd")

# Limit names, as they appear in the `reason` field of the log line.
EARLY_TALKER = "early_talker"
UNEXPECTED_PIPELINING = "pipelining"
SESSION_DURATION = "max_session_duration"
DATA_RATE = "min_data_rate"
TARPIT = "tarpit_after_errors"


class LimitExceeded(TimeoutError):
    """A time limit of the session ran out while it waited for input."""

    reason = ""


class SessionTooLong(LimitExceeded):
    """The session lasted longer than `smtp.max_session_duration`."""

    reason = SESSION_DURATION


class DataRateTooLow(LimitExceeded):
    """Message content arrived slower than `smtp.min_data_rate`."""

    reason = DATA_RATE


class DataRateMeter:
    """Bytes of message content received in the current measuring window.

    Times are event-loop times in seconds. Once `window_end` has passed,
    `check` raises DataRateTooLow if the window received fewer than
    `min_rate * window` bytes, and otherwise starts the next window.
    """

    def __init__(self, min_rate: int, window: float, now: float) -> None:
        self.min_rate = min_rate
        self.window = window
        self.window_end = now + window
        self.received = 0

    def count(self, size: int) -> None:
        """Add `size` received bytes to the current window."""
        self.received += size

    def check(self, now: float) -> None:
        """Raise DataRateTooLow if the ended window was below the rate."""
        if now < self.window_end:
            return
        if self.received < self.min_rate * self.window:
            raise DataRateTooLow()
        self.window_end = now + self.window
        self.received = 0


def log_limit(session_id: str, ip: str, reason: str, **fields: object) -> None:
    """Log one `event=limit` line for a session that reached `reason`."""
    event(
        log,
        "limit",
        level=logging.WARNING,
        session=session_id,
        ip=ip,
        reason=reason,
        **fields,
    )


class ProtocolViolation(Exception):
    """The client broke the command order in a way that ends the session."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
