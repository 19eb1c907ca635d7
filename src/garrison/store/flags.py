"""Message flags: the five system flags as bits, keywords as words.

`\\Recent` is not stored: it is a session property (RFC 3501 §2.3.2) and
IMAP4rev2 drops it.
"""

from __future__ import annotations

SEEN = 1
ANSWERED = 2
FLAGGED = 4
DELETED = 8
DRAFT = 16

SYSTEM_FLAGS: dict[str, int] = {
    "\\seen": SEEN,
    "\\answered": ANSWERED,
    "\\flagged": FLAGGED,
    "\\deleted": DELETED,
    "\\draft": DRAFT,
}
_NAMES = {SEEN: "\\Seen", ANSWERED: "\\Answered", FLAGGED: "\\Flagged",
          DELETED: "\\Deleted", DRAFT: "\\Draft"}


def pack(flags: frozenset[str] | set[str]) -> tuple[int, str]:
    """Split flag names into the system-flag bits and the keyword string."""
    bits = 0
    keywords: list[str] = []
    for flag in flags:
        bit = SYSTEM_FLAGS.get(flag.lower())
        if bit is not None:
            bits |= bit
        elif not flag.startswith("\\"):
            keywords.append(flag)
    return bits, " ".join(sorted(set(keywords)))


def unpack(bits: int, keywords: str) -> frozenset[str]:
    """Return the flag names stored as `bits` and `keywords`."""
    names = [name for bit, name in _NAMES.items() if bits & bit]
    if keywords:
        names.extend(keywords.split(" "))
    return frozenset(names)
