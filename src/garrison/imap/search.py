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

With a `SearchScope`, SUBJECT, BODY and TEXT strings of three or more
characters are looked up in the store's full-text index, once per key;
shorter strings, and messages stored before the index existed, are
scanned. BODY matches the body only, TEXT the header and the body. The
scope also gives "$" (RFC 5182) and the clock for OLDER and YOUNGER
(RFC 5032), and MODSEQ (RFC 7162 §3.1.5) compares the message's MODSEQ.
EMAILID and THREADID (RFC 8474 §6) compare the FETCH object ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from garrison.imap.command import SearchKey
from garrison.imap.types import SequenceSet
from garrison.message import SearchText, charsets, extract_search_text
from garrison.message.headers import decode_rfc2047, parse_header_block
from garrison.store import MailStore, MessageRecord
from garrison.store.fulltext import MIN_QUERY_CHARS

_STRICT_CHARSETS = {"US-ASCII": "ascii", "ASCII": "ascii"}
# Full-text fields searched by each string key.
_FULLTEXT_FIELDS = {
    "SUBJECT": ("subject",),
    "BODY": ("body",),
    "TEXT": ("headers", "body"),
}


@dataclass
class SearchScope:
    """What a search needs beyond one message: the mailbox and session state.

    `saved_uids` is the RFC 5182 saved result that "$" refers to; `now` is
    the Unix time OLDER and YOUNGER measure from.
    """

    store: MailStore
    mailbox_id: int
    saved_uids: frozenset[int] = frozenset()
    # RFC 3501 §2.3.2: the UIDs that are \Recent in the searching session.
    recent_uids: frozenset[int] = frozenset()
    now: float = field(default_factory=time.time)
    _unindexed: set[str] | None = None

    def unindexed(self) -> set[str]:
        """Return the mailbox's blobs without an index entry (read once)."""
        if self._unindexed is None:
            self._unindexed = self.store.fulltext.unindexed_blobs(self.mailbox_id)
        return self._unindexed


class SearchError(ValueError):
    """A search argument is invalid in the given charset."""


class UnsupportedCharset(ValueError):
    """The SEARCH CHARSET is not one of SUPPORTED_CHARSETS."""


class Candidate:
    """One message under evaluation, with lazily loaded analysis and text."""

    __slots__ = ("seq", "record", "store", "_meta", "_text", "_headers")
    _text: SearchText | None

    def __init__(self, seq: int, record: MessageRecord, store: MailStore) -> None:
        self.seq = seq
        self.record = record
        self.store = store
        self._meta = None
        self._text = None
        self._headers = None

    @property
    def meta(self):
        if self._meta is None:
            self._meta = self.store.message_meta(self.record.blob_id)
        return self._meta

    @property
    def text(self) -> SearchText:
        """Decoded header text and body text, each case-folded."""
        if self._text is None:
            data = self.store.blobs.read(self.record.blob_id)
            text = extract_search_text(data, self.meta.parts)
            self._text = SearchText(text.headers.casefold(), text.body.casefold())
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
    "MODSEQ": 0,
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
        self,
        charset: str | None,
        message_count: int,
        largest_uid: int,
        scope: SearchScope | None,
    ) -> None:
        if charset is None:
            codec = "utf-8"
        else:
            # RFC 3501 §6.4.4: any charset the message decoder knows, by the
            # same aliases (GB2312 and GBK decode as GB18030, and so on).
            # US-ASCII stays strict here: the alias table widens it to
            # windows-1252 only for mislabelled mail.
            found = _STRICT_CHARSETS.get(charset.upper()) or charsets.codec_for(charset)
            if found is None:
                raise UnsupportedCharset(charset)
            codec = found
        self.codec = codec
        self.message_count = message_count
        self.largest_uid = largest_uid
        self.scope = scope

    def decode(self, value: bytes) -> str:
        try:
            return value.decode(self.codec)
        except UnicodeDecodeError:
            raise SearchError(f"search string is not valid {self.codec}") from None

    def text(self, value: bytes) -> str:
        return self.decode(value).casefold()

    def _scan_text(self, op: str, needle: str) -> Predicate:
        if op == "BODY":
            return lambda m: needle in m.text.body
        if op == "TEXT":
            return lambda m: needle in m.text.headers or needle in m.text.body
        attribute = _META_FIELDS[op]
        return lambda m: needle in getattr(m.meta, attribute).casefold()

    def _string_key(self, key: SearchKey) -> Predicate:
        """SUBJECT, BODY or TEXT: the full-text index where it can answer."""
        op = key.op
        decoded = self.decode(key.value)
        scan = self._scan_text(op, decoded.casefold())
        scope = self.scope
        if scope is None or len(decoded) < MIN_QUERY_CHARS:
            # The trigram index cannot match fewer than three characters.
            return scan
        matched = scope.store.fulltext.matching_blobs(
            scope.mailbox_id, _FULLTEXT_FIELDS[op], decoded
        )
        unindexed = scope.unindexed()
        return lambda m: m.record.blob_id in matched or (
            m.record.blob_id in unindexed and scan(m)
        )

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
        if op == "ALL":
            return lambda m: True
        if op in ("NEW", "RECENT", "OLD"):
            recent = self.scope.recent_uids if self.scope is not None else frozenset()
            if op == "OLD":
                return lambda m: m.record.uid not in recent
            if op == "NEW":
                # RFC 3501 §6.4.4: NEW is RECENT UNSEEN.
                return lambda m: m.record.uid in recent and "\\Seen" not in m.record.flags
            return lambda m: m.record.uid in recent
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
        if op in _FULLTEXT_FIELDS:
            if not key.value:
                # An empty string is a substring of every message.
                return lambda m: True
            return self._string_key(key)
        if op in _META_FIELDS:
            attribute = _META_FIELDS[op]
            needle = self.text(key.value)
            return lambda m: needle in getattr(m.meta, attribute).casefold()
        if op == "HEADER":
            name = key.value[0].decode("ascii", "replace")
            needle = self.text(key.value[1])
            return lambda m: any(needle in value for value in m.header_values(name))
        if op == "EMAILID":
            # RFC 8474 §6: the messages whose EMAILID equals the value. The
            # comparison is exact, so "e0a1" does not match "E0a1".
            # Imported here because garrison.imap.commands imports this module.
            from garrison.imap.commands.fetch_ext import email_id

            expected_id = key.value
            return lambda m: email_id(m.record) == expected_id
        if op == "THREADID":
            # RFC 8474 §5.2: THREADID is NIL for every message here, so no
            # message belongs to a thread.
            return lambda m: False
        if op == "MODSEQ":
            modseq = key.value
            return lambda m: m.record.modseq >= modseq
        if op in ("OLDER", "YOUNGER"):
            # RFC 5032 §3: OLDER n is more than n seconds before now,
            # YOUNGER n at most n seconds.
            now = self.scope.now if self.scope is not None else time.time()
            limit = now - key.value
            if op == "OLDER":
                return lambda m: m.record.internaldate.timestamp() < limit
            return lambda m: m.record.internaldate.timestamp() >= limit
        if op in ("UID", "SEQSET") and key.value.saved:
            saved = self.scope.saved_uids if self.scope is not None else frozenset()
            return lambda m: m.record.uid in saved
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
    key: SearchKey,
    charset: str | None,
    message_count: int,
    largest_uid: int,
    scope: SearchScope | None = None,
) -> Predicate:
    """Compile a search program; raises UnsupportedCharset or SearchError.

    Without `scope`, string keys scan every message and "$" matches nothing.
    """
    return _Compiler(charset, message_count, largest_uid, scope).compile(key)
