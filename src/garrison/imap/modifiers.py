"""Parsers for command modifiers and select parameters of the sync extensions.

Pure code without I/O, used by `garrison.imap.parser`. The grammar is the
RFC 4466 framework as filled in by CONDSTORE and QRESYNC (RFC 7162 §7),
ESEARCH (RFC 4731 §4) and SEARCHRES (RFC 5182 §3). Every function raises
`ParseError` on a syntax error, never anything else.
"""

from __future__ import annotations

from garrison.imap.command import QResyncParams
from garrison.imap.syntax import (
    ATOM_CHARS,
    Cursor,
    parse_astring,
    parse_nz_number,
    parse_sequence_set,
)
from garrison.imap.types import STAR, SequenceSet

# RFC 7162 §7: mod-sequence-value = 1*DIGIT, at most 2^63 - 1.
MAX_MODSEQ = (1 << 63) - 1
_DIGITS = frozenset(b"0123456789")

# RFC 4731 §3 and RFC 5182 §2.4: the search result options.
SEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
# RFC 7162 §3.1.5: entry-type-req.
_ENTRY_TYPES = frozenset({"PRIV", "SHARED", "ALL"})


def parse_mod_sequence_valzer(cursor: Cursor) -> int:
    """mod-sequence-valzer = "0" / mod-sequence-value"""
    digits = cursor.run(_DIGITS)
    if not digits:
        raise cursor.fail("expected a mod-sequence value")
    if len(digits) > 19 or int(digits) > MAX_MODSEQ:
        raise cursor.fail("mod-sequence value out of range")
    return int(digits)


def parse_mod_sequence_value(cursor: Cursor) -> int:
    """mod-sequence-value = 1*DIGIT, greater than zero."""
    value = parse_mod_sequence_valzer(cursor)
    if value == 0:
        raise cursor.fail("mod-sequence value must not be 0")
    return value


def _parse_known_uids(cursor: Cursor) -> SequenceSet:
    """known-uids = sequence-set, of UIDs; "*" is not allowed (RFC 7162 §7)."""
    start = cursor.pos
    uids = parse_sequence_set(cursor)
    if uids.saved or any(STAR in pair for pair in uids.ranges):
        cursor.pos = start
        raise cursor.fail("known UIDs must not contain * or $")
    return uids


def _parse_qresync(cursor: Cursor) -> QResyncParams:
    """"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    [SP seq-match-data] ")"

    seq-match-data = "(" known-sequence-set SP known-uid-set ")"
    """
    cursor.sp()
    cursor.expect(b"(")
    uidvalidity = parse_nz_number(cursor)
    cursor.sp()
    modseq = parse_mod_sequence_value(cursor)
    known_uids = None
    seq_match = None
    if cursor.take(b" "):
        known_uids = _parse_known_uids(cursor)
        if cursor.take(b" "):
            seq_match = _parse_seq_match(cursor)
    cursor.expect(b")")
    return QResyncParams(uidvalidity, modseq, known_uids, seq_match)


def _parse_seq_match(cursor: Cursor) -> tuple[SequenceSet, SequenceSet]:
    cursor.expect(b"(")
    sequence_numbers = _parse_known_uids(cursor)
    cursor.sp()
    uids = _parse_known_uids(cursor)
    cursor.expect(b")")
    return sequence_numbers, uids


def parse_select_params(cursor: Cursor) -> tuple[bool, QResyncParams | None]:
    """select-params = "(" select-param *(SP select-param) ")"

    Returns (CONDSTORE given, the QRESYNC parameter or None).
    """
    cursor.expect(b"(")
    condstore = False
    qresync = None
    while True:
        name = cursor.run(ATOM_CHARS).decode("ascii").upper()
        if name == "CONDSTORE":
            condstore = True
        elif name == "QRESYNC" and qresync is None:
            qresync = _parse_qresync(cursor)
        else:
            raise cursor.fail(f"unknown or repeated select parameter {name or '?'}")
        if cursor.take(b")"):
            return condstore, qresync
        cursor.sp()


def parse_fetch_modifiers(cursor: Cursor) -> tuple[int | None, bool]:
    """fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"

    Returns (CHANGEDSINCE value or None, VANISHED given). RFC 7162 §3.2.6:
    VANISHED is valid only together with CHANGEDSINCE.
    """
    cursor.sp()
    cursor.expect(b"(")
    changed_since = None
    vanished = False
    while True:
        name = cursor.run(ATOM_CHARS).decode("ascii").upper()
        if name == "CHANGEDSINCE" and changed_since is None:
            cursor.sp()
            changed_since = parse_mod_sequence_value(cursor)
        elif name == "VANISHED" and not vanished:
            vanished = True
        else:
            raise cursor.fail(f"unknown or repeated FETCH modifier {name or '?'}")
        if cursor.take(b")"):
            break
        cursor.sp()
    if vanished and changed_since is None:
        raise cursor.fail("VANISHED requires CHANGEDSINCE")
    return changed_since, vanished


def parse_store_modifiers(cursor: Cursor) -> int:
    """store-modifiers = "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")" SP"""
    cursor.expect(b"(")
    name = cursor.run(ATOM_CHARS).decode("ascii").upper()
    if name != "UNCHANGEDSINCE":
        raise cursor.fail(f"unknown STORE modifier {name or '?'}")
    cursor.sp()
    value = parse_mod_sequence_valzer(cursor)
    cursor.expect(b")")
    cursor.sp()
    return value


def parse_search_return_opts(cursor: Cursor) -> tuple[str, ...]:
    """search-return-opts = "RETURN" SP "(" [search-return-opt *(SP ...)] ")"

    The caller has consumed "RETURN ". Returns the options in the order
    given, without duplicates.
    """
    cursor.expect(b"(")
    options: list[str] = []
    if cursor.take(b")"):
        return ()
    while True:
        name = cursor.run(ATOM_CHARS).decode("ascii").upper()
        if name not in SEARCH_RETURN_OPTIONS:
            raise cursor.fail(f"unknown SEARCH RETURN option {name or '?'}")
        if name not in options:
            options.append(name)
        if cursor.take(b")"):
            return tuple(options)
        cursor.sp()


def parse_search_modseq(cursor: Cursor) -> int:
    """search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer

    search-modseq-ext = SP entry-name SP entry-type-req. The caller has
    consumed "MODSEQ ". The metadata item is checked and then ignored:
    RFC 7162 §3.1.5 lets a server without per-flag mod-sequences use the
    message's MODSEQ.
    """
    if cursor.peek() == 0x22:
        entry = parse_astring(cursor)
        if not entry.lower().startswith(b"/flags/"):
            raise cursor.fail("MODSEQ entry name must start with /flags/")
        cursor.sp()
        entry_type = cursor.run(ATOM_CHARS).decode("ascii").upper()
        if entry_type not in _ENTRY_TYPES:
            raise cursor.fail("MODSEQ entry type must be priv, shared or all")
        cursor.sp()
    return parse_mod_sequence_valzer(cursor)
