"""Structured logging: one logfmt line per event.

`event(logger, "connect", session="a1b2", ip="192.0.2.1")` writes
`event=connect session=a1b2 ip=192.0.2.1`. Values with spaces, quotes or an
equals sign are quoted. Callers pass only metadata: never a password, an AUTH
payload or message content.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "-_.:/@+<>[],"
)


def _format_value(value: Any) -> str:
    text = "" if value is None else str(value)
    if text and all(ch in _SAFE for ch in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", "\\r").replace("\n", "\\n")
    return f'"{escaped}"'


def format_event(name: str, fields: dict[str, Any]) -> str:
    """Render an event name and its fields as one logfmt line."""
    parts = [f"event={_format_value(name)}"]
    parts.extend(f"{key}={_format_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def event(
    logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one structured event line if the logger is enabled for `level`."""
    if logger.isEnabledFor(level):
        logger.log(level, format_event(name, fields))


def setup_logging(level: str = "INFO") -> None:
    """Send garrison's log lines to standard error with a timestamp."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("garrison")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
