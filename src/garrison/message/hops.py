"""Count the Received header fields of a message, to stop mail loops.

RFC 5321 §6.3: a server should reject or bounce a message whose number of
Received fields passes a limit, because the count grows by one per hop and
only a loop makes it large.
"""

from __future__ import annotations

import re

# A Received field starts a line of the header section; the name is
# case-insensitive (RFC 5322 §1.2.2).
_RECEIVED = re.compile(rb"(?:^|\r?\n)received[ \t]*:", re.IGNORECASE)

# Bytes read from the start of a message to count its trace fields.
HEADER_PREFIX = 256 * 1024


def count_received(content: bytes) -> int:
    """Return how many Received fields the header section of `content` has.

    `content` is the message or a prefix of it; counting stops at the
    blank line that ends the header section.
    """
    end = content.find(b"\r\n\r\n")
    header = content if end < 0 else content[: end + 2]
    return len(_RECEIVED.findall(header))
