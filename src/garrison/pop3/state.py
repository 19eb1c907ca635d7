"""The POP3 session states."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """The session states of RFC 1939 §3."""

    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
