"""SEARCH evaluation (RFC 3501 §6.4.4) over store records.

`compile_search(key, charset, ...)` turns a parsed `SearchKey` tree into a
predicate over `Candidate` objects. A candidate reads the stored analysis
(decoded Subject, From, To, Cc, Bcc, sent date) and the message bytes only
when a key needs them, and AND evaluates cheap keys (flags, sizes, dates,
sequence sets) before the expensive ones. String keys match as a
case-insensitive substring of the decoded value.

Dates compare by calendar day: INTERNALDATE in its own time zone, the sent
date in the zone of its Date header (RFC 3501 §6.4.4: "disregarding time
and timezone").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from garrison.imap.command import SearchKey
from garrison.imap.types import SequenceSet
from garrison.message import extract_text
from garrison.message.headers import decode_rfc2047, parse_header_block
from garrison.store import MailStore, MessageRecord

# RFC 3501 §6.4.4: a server must support US-ASCII and UTF-8 at least.
SUPPORTED_CHARSETS = {"UTF-8": "utf-8", "US-ASCII": "ascii"}


class SearchError(ValueError):
    """A search argument is invalid in the given charset."""


class UnsupportedCharset(ValueError):
    """The SEARCH CHARSET is not one of SUPPORTED_CHARSETS."""


class Candidate:
    """One message under evaluation, with lazily loaded analysis and text."""

    __slots__ = ("seq", "record", "store", "_meta", "_text", "_headers")

    def __init__(self, seq: int, record: MessageRecord, store: MailStore) -> None:
        self.seq = seq
        self.record = record
        self.store = store
        self._meta = None
        self._text: str | None = None
        self._headers = None

    @property
    def meta(self):
        if self._meta is None:
            self._meta = self.store.message_meta(self.record.blob_id)
        return self._meta

    @property
    def text(self) -> str:
        """Decoded headers and text parts, case-folded."""
        if self._text is None:
            data = self.store.blobs.read(self.record.blob_id)
            self._text = extract_text(data, self.meta.parts).casefold()
        return self._text

    def header_values(self, name: str) -> list[str]:
        """Return the decoded values of every header field called `name`."""
        if self._headers is None:
            block = self.store.blobs.read_prefix(
                self.record.blob_id, self.meta.header_size
            )
            self._headers = parse_header_block(block)
        wanted = name.lower()
        return [
            decode_rfc2047(field.value).casefold()
            for field in self._headers
            if field.name.lower() == wanted
        ]


Predicate = Callable[[Candidate], bool]

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_META_FIELDS = {
    "SUBJECT": "subject",
    "FROM": "from_",
    "TO": "to",
    "CC": "cc",
    "BCC": "bcc",
}
_COST = {
    "BODY": 3,
    "TEXT": 3,
    "HEADER": 2,
    **{key: 1 for key in _META_FIELDS},
    "SENTBEFORE": 1,
    "SENTON": 1,
    "SENTSINCE": 1,
}


def _cost(key: SearchKey) -> int:
    own = _COST.get(key.op, 0)
    return max([own, *(_cost(child) for child in key.children)])


def _date_test(op: str, day: date, value: date) -> bool:
    if op.endswith("BEFORE"):
        return value < day
    if op.endswith("ON"):
        return value == day
    return value >= day


class _Compiler:
    def __init__(
        self, charset: str | None, message_count: int, largest_uid: int
    ) -> None:
        if charset is None:
            codec = "utf-8"
        else:
            codec = SUPPORTED_CHARSETS.get(charset.upper())
            if codec is None:
                raise UnsupportedCharset(charset)
        self.codec = codec
        self.message_count = message_count
        self.largest_uid = largest_uid

    def text(self, value: bytes) -> str:
        try:
            return value.decode(self.codec).casefold()
        except UnicodeDecodeError:
            raise SearchError(f"search string is not valid {self.codec}") from None

    def compile(self, key: SearchKey) -> Predicate:
        op = key.op
        if op == "AND":
            children = sorted(key.children, key=_cost)
            tests = [self.compile(child) for child in children]
            return lambda m: all(test(m) for test in tests)
        if op == "OR":
            left, right = (self.compile(child) for child in key.children)
            return lambda m: left(m) or right(m)
        if op == "NOT":
            inner = self.compile(key.children[0])
            return lambda m: not inner(m)
        if op in ("ALL", "OLD"):
            # No message is \Recent in this store, so every message is OLD.
            return lambda m: True
        if op in ("NEW", "RECENT"):
            return lambda m: False
        if op in _FLAG_KEYS:
            flag, wanted = _FLAG_KEYS[op]
            return lambda m: (flag in m.record.flags) == wanted
        if op in ("KEYWORD", "UNKEYWORD"):
            keyword = key.value.casefold()
            wanted = op == "KEYWORD"
            return lambda m: (
                any(f.casefold() == keyword for f in m.record.flags) == wanted
            )
        if op in ("BEFORE", "ON", "SINCE"):
            day = key.value
            return lambda m: _date_test(op, day, m.record.internaldate.date())
        if op in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            day = key.value
            return lambda m: (
                m.meta.sent_date is not None
                and _date_test(op, day, m.meta.sent_date.date())
            )
        if op == "LARGER":
            return lambda m: m.record.size > key.value
        if op == "SMALLER":
            return lambda m: m.record.size < key.value
        if op in _META_FIELDS:
            attribute = _META_FIELDS[op]
            needle = self.text(key.value)
            return lambda m: needle in getattr(m.meta, attribute).casefold()
        if op == "HEADER":
            name = key.value[0].decode("ascii", "replace")
            needle = self.text(key.value[1])
            return lambda m: any(needle in value for value in m.header_values(name))
        if op in ("BODY", "TEXT"):
            # TODO: BODY also matches header text, because extract_text
            # returns headers and body together; RFC 3501 limits BODY to the
            # body.
            needle = self.text(key.value)
            return lambda m: needle in m.text
        if op == "UID":
            uid_set: SequenceSet = key.value
            largest_uid = self.largest_uid
            return lambda m: uid_set.contains(m.record.uid, largest_uid)
        if op == "SEQSET":
            seq_set: SequenceSet = key.value
            count = self.message_count
            return lambda m: seq_set.contains(m.seq, count)
        raise SearchError(f"unknown search key {op}")


def compile_search(
    key: SearchKey, charset: str | None, message_count: int, largest_uid: int
) -> Predicate:
    """Compile a search program; raises UnsupportedCharset or SearchError."""
    return _Compiler(charset, message_count, largest_uid).compile(key)
