"""IMAP lexical rules: the `Cursor` and the basic RFC 3501 §9 ABNF rules.

Pure code without I/O. A command arrives as `lines` plus `literals`: every
line but the last ends with a literal announcement `{n}` or `{n+}`
(RFC 7888 LITERAL+ adds the "+"), and `literals[i]` is the payload that
follows `lines[i]`. The reader guarantees that shape; the functions here
check everything else. Each function is named after the ABNF rule it
parses and raises `ParseError` on a syntax error, never anything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

from garrison.imap import utf7
from garrison.imap.command import LiteralData, SpooledLiteral
from garrison.imap.types import MAX_NUMBER, STAR, SequenceSet


class ParseError(Exception):
    """A syntax error in a client command; the session replies BAD.

    `tag` is the command tag when it could be read (None means an untagged
    BAD). `code` is an optional response code such as "TOOBIG".
    """

    def __init__(self, message: str, tag: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.tag = tag
        self.code = code


def _byte_set(chars: bytes) -> frozenset[int]:
    return frozenset(chars)


_CTL = frozenset(range(0x00, 0x20)) | {0x7F}
# RFC 3501 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials.
_ATOM_SPECIALS = _byte_set(b'(){ %*"\\]') | _CTL
ATOM_CHARS = frozenset(range(0x01, 0x80)) - _ATOM_SPECIALS
ASTRING_CHARS = ATOM_CHARS | {ord("]")}
# RFC 3501 §9: tag = 1*<any ASTRING-CHAR except "+">.
TAG_CHARS = ASTRING_CHARS - {ord("+")}
# RFC 3501 §9: list-char = ATOM-CHAR / list-wildcards / resp-specials.
LIST_CHARS = ATOM_CHARS | _byte_set(b"%*]")
_DIGITS = _byte_set(b"0123456789")

SYSTEM_FLAGS = {
    "\\ANSWERED": "\\Answered",
    "\\FLAGGED": "\\Flagged",
    "\\DELETED": "\\Deleted",
    "\\SEEN": "\\Seen",
    "\\DRAFT": "\\Draft",
}

MONTHS = {
    name: index
    for index, name in enumerate(
        [
            "JAN",
            "FEB",
            "MAR",
            "APR",
            "MAY",
            "JUN",
            "JUL",
            "AUG",
            "SEP",
            "OCT",
            "NOV",
            "DEC",
        ],
        start=1,
    )
}

_DATE_TIME = re.compile(
    rb"^([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) "
    rb"([+-])([0-9]{2})([0-9]{2})$"
)
_DATE_TEXT = re.compile(rb"^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})$")

# Upper bound for any string argument other than an APPEND message, so a
# spooled literal is never read back into memory for, say, a user name.
MAX_STRING_LITERAL = 1 << 20


class Cursor:
    """A read position in a command: the current line plus the literals."""

    __slots__ = (
        "lines", "literals", "line_index", "pos", "buf", "tag", "utf8_mailboxes"
    )

    def __init__(self, lines: Sequence[bytes], literals: Sequence[LiteralData] = ()):
        if len(literals) != len(lines) - 1:
            raise ParseError("internal: literal count does not match line count")
        self.lines = lines
        self.literals = literals
        self.line_index = 0
        self.pos = 0
        self.buf = lines[0]
        self.tag: str | None = None
        # RFC 9051 §5.1 and RFC 6855 §3: mailbox names are UTF-8, not
        # modified UTF-7, once the session enabled IMAP4rev2 or UTF8=ACCEPT.
        self.utf8_mailboxes = False

    @classmethod
    def from_bytes(cls, data: bytes) -> Cursor:
        """Make a cursor over one line without literals (for tests and tools)."""
        return cls([data], [])

    def fail(self, message: str, code: str | None = None) -> ParseError:
        return ParseError(message, tag=self.tag, code=code)

    def peek(self) -> int:
        """Return the next byte, or -1 at the end of the current line."""
        if self.pos < len(self.buf):
            return self.buf[self.pos]
        return -1

    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and self.line_index == len(self.lines) - 1

    def expect_end(self) -> None:
        if not self.at_end():
            raise self.fail("unexpected extra arguments")

    def expect(self, token: bytes) -> None:
        end = self.pos + len(token)
        if self.buf[self.pos : end].upper() != token.upper():
            raise self.fail(f"expected {token.decode()!r}")
        self.pos = end

    def take(self, token: bytes) -> bool:
        """Consume `token` (case-insensitive) when it comes next."""
        end = self.pos + len(token)
        if self.buf[self.pos : end].upper() == token.upper():
            self.pos = end
            return True
        return False

    def sp(self) -> None:
        # RFC 3501 §9: arguments are separated by exactly one SP.
        if self.peek() != 0x20:
            raise self.fail("expected a space")
        self.pos += 1

    def run(self, allowed: frozenset[int]) -> bytes:
        """Consume the longest run of bytes from `allowed` (may be empty)."""
        start = self.pos
        buf = self.buf
        end = len(buf)
        pos = start
        while pos < end and buf[pos] in allowed:
            pos += 1
        self.pos = pos
        return buf[start:pos]

    def next_literal(self) -> LiteralData:
        """Move past the announcement at the end of the line to its payload."""
        if self.pos != len(self.buf) or self.line_index >= len(self.literals):
            raise self.fail("literal announcement must end the line")
        literal = self.literals[self.line_index]
        self.line_index += 1
        self.buf = self.lines[self.line_index]
        self.pos = 0
        return literal


def parse_atom(cursor: Cursor) -> bytes:
    """atom = 1*ATOM-CHAR"""
    value = cursor.run(ATOM_CHARS)
    if not value:
        raise cursor.fail("expected an atom")
    return value


def parse_number(cursor: Cursor) -> int:
    """number = 1*DIGIT, an unsigned 32-bit integer."""
    digits = cursor.run(_DIGITS)
    if not digits:
        raise cursor.fail("expected a number")
    if len(digits) > 10 or int(digits) > MAX_NUMBER:
        raise cursor.fail("number out of range")
    return int(digits)


def parse_nz_number(cursor: Cursor) -> int:
    """nz-number = digit-nz *DIGIT"""
    if cursor.peek() == ord("0"):
        raise cursor.fail("expected a non-zero number")
    return parse_number(cursor)


def parse_quoted(cursor: Cursor) -> bytes:
    """quoted = DQUOTE *QUOTED-CHAR DQUOTE

    8-bit bytes are accepted inside quotes, as Dovecot and most servers do,
    because clients send UTF-8 search strings that way. CR, LF and NUL are
    not.
    """
    cursor.expect(b'"')
    buf = cursor.buf
    out = bytearray()
    pos = cursor.pos
    while True:
        if pos >= len(buf):
            raise cursor.fail("unterminated quoted string")
        byte = buf[pos]
        if byte == 0x22:
            cursor.pos = pos + 1
            return bytes(out)
        if byte == 0x5C:
            pos += 1
            # RFC 3501 §9: only quoted-specials may be escaped.
            if pos >= len(buf) or buf[pos] not in (0x22, 0x5C):
                raise cursor.fail("invalid escape in quoted string")
            byte = buf[pos]
        elif byte in (0x00, 0x0A, 0x0D):
            raise cursor.fail("invalid character in quoted string")
        out.append(byte)
        pos += 1


def parse_literal(cursor: Cursor, *, allow_nul: bool = False) -> LiteralData:
    """literal = "{" number ["+"] "}" CRLF *CHAR8"""
    cursor.expect(b"{")
    size = parse_number(cursor)
    cursor.take(b"+")
    cursor.expect(b"}")
    literal = cursor.next_literal()
    if len(literal) != size:
        raise cursor.fail("internal: literal size does not match its announcement")
    if not allow_nul:
        if isinstance(literal, SpooledLiteral) or len(literal) > MAX_STRING_LITERAL:
            raise cursor.fail("literal too long for this argument", code="TOOBIG")
        # RFC 3501 §9: CHAR8 excludes NUL.
        if b"\x00" in literal:
            raise cursor.fail("NUL byte in literal")
    return literal


def parse_string(cursor: Cursor) -> bytes:
    """string = quoted / literal"""
    if cursor.peek() == 0x22:
        return parse_quoted(cursor)
    if cursor.peek() == ord("{"):
        literal = parse_literal(cursor)
        assert isinstance(literal, bytes)
        return literal
    raise cursor.fail("expected a quoted string or a literal")


def parse_astring(cursor: Cursor) -> bytes:
    """astring = 1*ASTRING-CHAR / string"""
    if cursor.peek() in (0x22, ord("{")):
        return parse_string(cursor)
    value = cursor.run(ASTRING_CHARS)
    if not value:
        raise cursor.fail("expected a string")
    return value


def parse_nstring(cursor: Cursor) -> bytes | None:
    """nstring = string / nil"""
    if cursor.take(b"NIL"):
        return None
    return parse_string(cursor)


def decode_mailbox(cursor: Cursor, raw: bytes) -> str:
    # RFC 3501 §5.1: INBOX is case-insensitive.
    if raw.upper() == b"INBOX":
        return "INBOX"
    if cursor.utf8_mailboxes:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise cursor.fail("invalid mailbox name: not valid UTF-8") from None
    else:
        try:
            name = utf7.decode(raw)
        except utf7.UTF7Error as exc:
            raise cursor.fail(f"invalid mailbox name: {exc}") from None
    if name.upper().startswith("INBOX/"):
        name = "INBOX" + name[5:]
    return name


def parse_mailbox(cursor: Cursor) -> str:
    """mailbox = "INBOX" / astring, decoded from modified UTF-7."""
    return decode_mailbox(cursor, parse_astring(cursor))


def parse_list_mailbox(cursor: Cursor) -> str:
    """list-mailbox = 1*list-char / string, decoded from modified UTF-7."""
    if cursor.peek() in (0x22, ord("{")):
        raw = parse_string(cursor)
        if not raw:
            return ""
    else:
        raw = cursor.run(LIST_CHARS)
        if not raw:
            raise cursor.fail("expected a mailbox pattern")
    return decode_mailbox(cursor, raw)


def parse_seq_number(cursor: Cursor) -> int:
    """seq-number = nz-number / "*" """
    if cursor.take(b"*"):
        return STAR
    return parse_nz_number(cursor)


def parse_sequence_set(cursor: Cursor) -> SequenceSet:
    """sequence-set = (seq-number / seq-range) *("," sequence-set) / "$"

    RFC 5182 §3: "$" stands alone and names the saved search result.
    """
    if cursor.take(b"$"):
        return SequenceSet((), saved=True)
    ranges = []
    while True:
        low = parse_seq_number(cursor)
        high = parse_seq_number(cursor) if cursor.take(b":") else low
        ranges.append((low, high))
        if not cursor.take(b","):
            return SequenceSet(tuple(ranges))


MAX_KEYWORD_LENGTH = 128
MAX_FLAGS_PER_LIST = 100
# TODO: the number of distinct keywords per mailbox is not limited yet.


def parse_flag(cursor: Cursor) -> str:
    """flag = "\\Answered" / ... / keyword / flag-extension"""
    if cursor.take(b"\\"):
        name = "\\" + parse_atom(cursor).decode("ascii")
        system = SYSTEM_FLAGS.get(name.upper())
        if system is None:
            # RFC 3501 §2.3.2: \Recent is set by the server, never stored by
            # a client; other backslash flags are not defined.
            raise cursor.fail(f"invalid system flag {name}")
        return system
    keyword = parse_atom(cursor).decode("ascii")
    if len(keyword) > MAX_KEYWORD_LENGTH:
        # Keywords are repeated in every FLAGS response of the mailbox, so a
        # huge one would cost every later SELECT; Dovecot limits them too.
        raise cursor.fail(f"keyword longer than {MAX_KEYWORD_LENGTH} characters")
    return keyword


def parse_flag_list(cursor: Cursor) -> frozenset[str]:
    """flag-list = "(" [flag *(SP flag)] ")" """
    cursor.expect(b"(")
    flags = set()
    if not cursor.take(b")"):
        flags.add(parse_flag(cursor))
        while not cursor.take(b")"):
            cursor.sp()
            flags.add(parse_flag(cursor))
            if len(flags) > MAX_FLAGS_PER_LIST:
                raise cursor.fail(f"more than {MAX_FLAGS_PER_LIST} flags in one list")
    return frozenset(flags)


def _month(cursor: Cursor, text: bytes) -> int:
    month = MONTHS.get(text.decode("ascii").upper())
    if month is None:
        raise cursor.fail("invalid month name")
    return month


def parse_date_time(cursor: Cursor) -> datetime:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE

    The result is timezone-aware, in the zone the client gave.
    """
    if cursor.peek() != 0x22:
        raise cursor.fail("expected a quoted date-time")
    match = _DATE_TIME.match(parse_quoted(cursor))
    if not match:
        raise cursor.fail("invalid date-time")
    day, month_text, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
    try:
        return datetime(
            int(year),
            _month(cursor, month_text),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(-offset if sign == b"-" else offset),
        )
    except ValueError:
        raise cursor.fail("invalid date-time") from None


def parse_date(cursor: Cursor) -> date:
    """date = date-text / DQUOTE date-text DQUOTE"""
    if cursor.peek() == 0x22:
        text = parse_quoted(cursor)
    else:
        text = cursor.run(ATOM_CHARS)
    match = _DATE_TEXT.match(text)
    if not match:
        raise cursor.fail("invalid date, expected e.g. 1-Feb-2024")
    day, month_text, year = match.groups()
    try:
        return date(int(year), _month(cursor, month_text), int(day))
    except ValueError:
        raise cursor.fail("invalid date") from None
