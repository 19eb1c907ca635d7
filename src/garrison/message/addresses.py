"""Address-list parsing (RFC 5322 §3.4) for the IMAP ENVELOPE.

Entry point: `parse_address_list(value)` returns `Address` tuples in the
shape of RFC 3501 §7.4.2: (name, route, mailbox, host), with a group written
as a start marker (NIL NIL "group name" NIL), its members and an end marker
(NIL NIL NIL NIL). Values stay raw: encoded words are not decoded, because
IMAP clients decode them themselves.

Recovery from malformed input follows Dovecot 2.3 (lib-mail/message-address.c):
a missing local part becomes "MISSING_MAILBOX", a missing domain becomes
"MISSING_DOMAIN", and a broken <angle-addr> gets the host "SYNTAX_ERROR".
The parser is iterative and linear, and it stops after `max_addresses`.
"""

from __future__ import annotations

from typing import NamedTuple

from garrison.message.headers import decode_rfc2047

# RFC 5322 §3.2.3: atext, plus 8-bit bytes so that UTF-8 names (RFC 6532)
# and raw legacy charsets stay inside atoms.
_ATEXT = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
) | frozenset(range(128, 256))

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"
SYNTAX_ERROR = b"SYNTAX_ERROR"


class Address(NamedTuple):
    """One ENVELOPE address entry; None fields are written as NIL."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None


class _Cursor:
    """Position in one unfolded header value, with RFC 5322 lexical helpers."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment = bytearray()

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_cfws(self) -> bool:
        """Skip whitespace and comments; return False at the end of the value."""
        data = self.data
        while self.pos < self.end:
            byte = data[self.pos]
            if byte in (32, 9, 13, 10):
                self.pos += 1
            elif byte == 40:
                self._comment()
            else:
                return True
        return False

    def _comment(self) -> None:
        data = self.data
        depth = 0
        self.last_comment.clear()
        while self.pos < self.end:
            byte = data[self.pos]
            self.pos += 1
            if byte == 92 and self.pos < self.end:
                self.last_comment.append(data[self.pos])
                self.pos += 1
                continue
            if byte == 40:
                depth += 1
                if depth == 1:
                    continue
            elif byte == 41:
                depth -= 1
                if depth == 0:
                    return
            if byte not in (13, 10):
                self.last_comment.append(byte)

    def atom(self) -> bytes | None:
        start = self.pos
        while self.pos < self.end and self.data[self.pos] in _ATEXT:
            self.pos += 1
        if self.pos == start:
            return None
        return self.data[start : self.pos]

    def quoted_string(self) -> bytes:
        """Read a quoted-string at '"'; an unterminated one runs to the end."""
        data = self.data
        self.pos += 1
        out = bytearray()
        while self.pos < self.end:
            byte = data[self.pos]
            self.pos += 1
            if byte == 34:
                return bytes(out)
            if byte == 92 and self.pos < self.end:
                byte = data[self.pos]
                self.pos += 1
            if byte not in (13, 10):
                out.append(byte)
        return bytes(out)

    def phrase(self) -> bytes | None:
        """Read an RFC 5322 phrase (obs-phrase allows dots), words joined by a space."""
        words: list[bytes] = []
        while self.pos < self.end:
            byte = self.peek()
            if byte == 34:
                words.append(self.quoted_string())
            elif byte == 46:  # "."
                if not words:
                    return None
                self.pos += 1
                words.append(b".")
            else:
                word = self.atom()
                if word is None:
                    break
                words.append(word)
            self.skip_cfws()
        if not words:
            return None
        text = b" ".join(words)
        return text.replace(b" . ", b". ").replace(b" .", b".")

    def dot_atom(self) -> bytes | None:
        parts: list[bytes] = []
        while True:
            word = self.atom()
            if word is None:
                break
            parts.append(word)
            self.skip_cfws()
            if self.peek() != 46:
                break
            self.pos += 1
            self.skip_cfws()
        if not parts:
            return None
        return b".".join(parts)

    def domain(self) -> bytes | None:
        """Read a domain after "@": a dot-atom or a [domain-literal]."""
        self.skip_cfws()
        if self.peek() == 91:  # "["
            close = self.data.find(b"]", self.pos)
            if close < 0:
                close = self.end - 1
            literal = self.data[self.pos : close + 1]
            self.pos = close + 1
            self.skip_cfws()
            return literal
        return self.dot_atom()


class _AddressListParser:
    def __init__(self, data: bytes, max_addresses: int) -> None:
        self.cursor = _Cursor(data)
        self.max_addresses = max_addresses
        self.result: list[Address] = []

    def parse(self) -> list[Address]:
        cursor = self.cursor
        if not cursor.skip_cfws():
            return []
        while len(self.result) < self.max_addresses:
            self._address()
            # Like Dovecot, stop at the first byte that cannot follow an
            # address rather than guess where the next one starts.
            if not cursor.skip_cfws() or cursor.peek() != 44:  # ","
                break
            cursor.pos += 1
            if not cursor.skip_cfws():
                break
        return self.result

    def _address(self) -> None:
        cursor = self.cursor
        start = cursor.pos
        name = cursor.phrase()
        if name is not None and cursor.peek() == 58:  # ":" starts a group
            cursor.pos += 1
            self.result.append(Address(None, None, name, None))
            self._group_members()
            self.result.append(Address(None, None, None, None))
            return
        cursor.pos = start
        self._mailbox()

    def _group_members(self) -> None:
        cursor = self.cursor
        while cursor.skip_cfws() and len(self.result) < self.max_addresses:
            byte = cursor.peek()
            if byte == 59:  # ";" ends the group
                cursor.pos += 1
                return
            if byte == 44:
                cursor.pos += 1
                continue
            start = cursor.pos
            self._mailbox()
            if cursor.pos == start:
                cursor.pos += 1

    def _mailbox(self) -> None:
        cursor = self.cursor
        start = cursor.pos
        name = cursor.phrase()
        if cursor.peek() == 60:  # "<": name-addr
            route, mailbox, host, valid = self._angle_addr()
            if not valid:
                host = SYNTAX_ERROR
            self._add(name, route, mailbox, host)
            return
        cursor.pos = start
        cursor.last_comment.clear()
        mailbox = self._local_part()
        host = None
        if mailbox is not None and cursor.peek() == 64:  # "@"
            cursor.pos += 1
            host = cursor.domain()
        comment = bytes(cursor.last_comment).strip() or None
        self._add(comment, None, mailbox, host)

    def _local_part(self) -> bytes | None:
        cursor = self.cursor
        if cursor.peek() == 34:
            value = cursor.quoted_string()
            cursor.skip_cfws()
            return value
        return cursor.dot_atom()

    def _angle_addr(self) -> tuple[bytes | None, bytes | None, bytes | None, bool]:
        cursor = self.cursor
        cursor.pos += 1
        cursor.skip_cfws()
        route = None
        if cursor.peek() == 64:
            route = self._route()
            if route is None or cursor.peek() != 58:
                self._skip_past(b">")
                return b"INVALID_ROUTE", None, None, False
            cursor.pos += 1
            cursor.skip_cfws()
        mailbox = self._local_part()
        host = None
        if mailbox is not None and cursor.peek() == 64:
            cursor.pos += 1
            host = cursor.domain()
        if cursor.peek() != 62:  # ">"
            self._skip_past(b">")
            return route, mailbox, host, False
        cursor.pos += 1
        return route, mailbox, host, True

    def _route(self) -> bytes | None:
        """Read an obs-domain-list: "@" domain *("," ["@" domain])."""
        cursor = self.cursor
        domains: list[bytes] = []
        while cursor.peek() == 64:
            cursor.pos += 1
            domain = cursor.domain()
            if domain is None:
                return None
            domains.append(b"@" + domain)
            while cursor.skip_cfws() and cursor.peek() == 44:
                cursor.pos += 1
        return b",".join(domains) if domains else None

    def _skip_past(self, terminator: bytes) -> None:
        cursor = self.cursor
        found = cursor.data.find(terminator, cursor.pos)
        cursor.pos = cursor.end if found < 0 else found + 1

    def _add(
        self,
        name: bytes | None,
        route: bytes | None,
        mailbox: bytes | None,
        host: bytes | None,
    ) -> None:
        self.result.append(
            Address(
                name or None,
                route,
                MISSING_MAILBOX if mailbox is None else mailbox,
                MISSING_DOMAIN if host is None else host,
            )
        )


def parse_address_list(value: bytes, max_addresses: int = 10_000) -> list[Address]:
    """Parse an unfolded address-list header value; never raises.

    An empty or blank value returns an empty list, which ENVELOPE writes as NIL.
    """
    return _AddressListParser(value, max_addresses).parse()


def format_addresses(addresses: list[Address]) -> str:
    """Render addresses as decoded text ("Name <box@host>, group: ...;") for search."""
    pieces: list[str] = []
    in_group = False
    for address in addresses:
        if address.host is None:
            if address.mailbox is not None and not in_group:
                pieces.append(decode_rfc2047(address.mailbox) + ":")
                in_group = True
            else:
                pieces.append(";")
                in_group = False
            continue
        mailbox = (address.mailbox or b"").decode("utf-8", "replace")
        host = address.host.decode("utf-8", "replace")
        addr_spec = f"{mailbox}@{host}"
        if address.name:
            pieces.append(f"{decode_rfc2047(address.name)} <{addr_spec}>")
        else:
            pieces.append(addr_spec)
    text = ", ".join(pieces)
    return text.replace(":, ", ": ").replace(", ;", ";")
