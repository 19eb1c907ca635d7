"""Value types shared by the IMAP parser, session and handlers.

Message sequence numbers, UIDs and mod-sequences are all positive integers on
the wire, and mixing them up is the classic IMAP bug, so each gets its own
`NewType`. `SequenceSet` is the parsed form of RFC 3501 `sequence-set`; it is
resolved against the session's current view of the mailbox, never against
the store directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NewType

SeqNum = NewType("SeqNum", int)
UID = NewType("UID", int)
ModSeq = NewType("ModSeq", int)

# RFC 3501 §9: nz-number is a non-zero unsigned 32-bit integer.
MAX_NUMBER = 0xFFFFFFFF

# The `*` in a sequence set: the largest number in use in the mailbox.
STAR = 0


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed RFC 3501 `sequence-set`.

    Each range is `(low, high)` as written by the client, so `low` may be
    larger than `high` (`4:2` means 2, 3, 4) and either end may be `STAR`.
    """

    ranges: tuple[tuple[int, int], ...]
    # RFC 5182 §2.1: "$", the result saved by the last SEARCH RETURN (SAVE).
    # Its `ranges` are empty; the session resolves it.
    saved: bool = False

    def resolve(self, largest: int) -> tuple[tuple[int, int], ...]:
        """Return the ranges with `*` replaced by `largest`, each ordered low to high.

        RFC 3501 §6.4.8: `*` in an empty mailbox matches nothing, so with
        `largest == 0` a range that contains `*` resolves to (0, 0)-style
        ranges that callers skip.
        """
        resolved = []
        for low, high in self.ranges:
            low = largest if low == STAR else low
            high = largest if high == STAR else high
            if low > high:
                low, high = high, low
            resolved.append((low, high))
        return tuple(resolved)

    def contains(self, number: int, largest: int) -> bool:
        """Return True when `number` lies in the set, with `*` meaning `largest`."""
        for low, high in self.resolve(largest):
            if low <= number <= high and number > 0:
                return True
        return False

    def iter_sorted(self, largest: int, limit: int) -> Iterator[int]:
        """Yield the distinct members in ascending order, capped at `limit`.

        `limit` bounds the work: members above it cannot name a message, so
        `1:4294967295` on a small mailbox costs no more than `1:*`.
        """
        ranges = sorted(
            (low, min(high, limit))
            for low, high in self.resolve(largest)
            if low <= limit and low > 0
        )
        last = 0
        for low, high in ranges:
            yield from range(max(low, last + 1), high + 1)
            last = max(last, high)

    def __str__(self) -> str:
        if self.saved:
            return "$"
        parts = []
        for low, high in self.ranges:
            low_text = "*" if low == STAR else str(low)
            high_text = "*" if high == STAR else str(high)
            parts.append(low_text if low == high else f"{low_text}:{high_text}")
        return ",".join(parts)


def format_uid_set(uids: list[int]) -> str:
    """Format UIDs as a compact sequence set (`1:3,7`) in the order given.

    RFC 4315 §3: COPYUID and APPENDUID pair source and destination sets by
    position, so the order must be preserved and only runs that ascend by one
    are collapsed.
    """
    if not uids:
        return ""
    parts = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)
