"""Header fields: splitting a header block, RFC 2047 words, MIME parameters.

Entry points:
- `parse_header_block(block)` splits raw header bytes into `HeaderField`s.
- `decode_rfc2047(value)` decodes encoded words (RFC 2047) for display and search.
- `parse_content_type`, `parse_disposition`, `parse_language` read the MIME
  fields that BODYSTRUCTURE reports (RFC 2045, RFC 2183, RFC 3282), with RFC
  2231 parameter continuations merged the way Dovecot reports them.
- `decode_param(params, name)` returns a parameter's decoded Unicode value.

Security: every function here is linear in its input and never raises on
malformed input. Callers cap the size of the header block before calling.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from garrison.message import charsets

# RFC 2045 §5.1: tspecials, which a token may not contain.
_TSPECIALS = frozenset(b'()<>@,;:\\"/[]?=')
_WSP = b" \t"


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: its name as sent, its raw lines and its value.

    `raw` is the field exactly as stored, folding and line ends included.
    `folded_value` is the text after the colon without its leading
    whitespace, with the line breaks of folding still in it. `value` is the
    same with every CR and LF removed, so continuation lines keep their
    leading whitespace.
    """

    name: str
    raw: bytes
    folded_value: bytes

    @property
    def value(self) -> bytes:
        """The unfolded value (CR and LF removed)."""
        return self.folded_value.replace(b"\r", b"").replace(b"\n", b"")


def parse_header_block(block: bytes) -> list[HeaderField]:
    """Split a header block into fields; lines without a colon are skipped.

    A continuation line (starting with space or tab) before the first field
    is skipped as well. The blank line that ends the block is not a field.
    """
    fields: list[HeaderField] = []
    name: str | None = None
    start = 0
    pos = 0
    size = len(block)

    def flush(end: int) -> None:
        if name is None:
            return
        raw = block[start:end]
        colon = raw.index(b":")
        value = raw[colon + 1 :].lstrip(_WSP)
        if value.endswith(b"\n"):
            value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
        fields.append(HeaderField(name, raw, value))

    while pos < size:
        newline = block.find(b"\n", pos)
        line_end = size if newline < 0 else newline + 1
        first = block[pos : pos + 1]
        if first in (b" ", b"\t"):
            pos = line_end
            continue
        flush(pos)
        name = None
        colon = block.find(b":", pos, line_end)
        if colon > pos:
            candidate = block[pos:colon].rstrip(_WSP)
            if candidate and all(33 <= byte <= 126 for byte in candidate):
                name = candidate.decode("ascii")
                start = pos
        pos = line_end
    flush(size)
    return fields


def first_field(fields: list[HeaderField], name: str) -> HeaderField | None:
    """Return the first field called `name` (case-insensitive), or None."""
    key = name.lower()
    for field in fields:
        if field.name.lower() == key:
            return field
    return None


def last_field(fields: list[HeaderField], name: str) -> HeaderField | None:
    """Return the last field called `name` (case-insensitive), or None."""
    key = name.lower()
    for field in reversed(fields):
        if field.name.lower() == key:
            return field
    return None


# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?=",
# where the charset may carry an RFC 2231 §5 language suffix ("utf-8*en").
_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
# Missing "=" padding is accepted because many mailers drop it.
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _decode_word_bytes(encoding: str, text: str) -> bytes | None:
    """Return the octets of an encoded word, or None if they are malformed."""
    if encoding in "bB":
        if _BASE64_TEXT.fullmatch(text) is None:
            return None
        padded = text.rstrip("=")
        padded += "=" * (-len(padded) % 4)
        try:
            return binascii.a2b_base64(padded.encode("ascii"))
        except (binascii.Error, ValueError):
            return None
    try:
        raw = text.replace("_", " ").encode("latin-1")
    except UnicodeEncodeError:
        return None
    return _Q_ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), raw)


def decode_rfc2047(value: str | bytes) -> str:
    """Decode the RFC 2047 encoded words in a header value; never raises.

    Raw 8-bit bytes are decoded with the charset fallback chain first (RFC
    6532 allows UTF-8 headers; older mailers send raw GBK). Folding is
    removed. Adjacent encoded words are joined without the whitespace
    between them (RFC 2047 §6.2), and consecutive words in one charset are
    decoded together, so a multibyte character split across two words
    survives. A malformed word is left as it is.
    """
    if isinstance(value, bytes):
        value = charsets.decode(value, None)
    value = value.replace("\r\n", "").replace("\n", "").replace("\r", "")
    if "=?" not in value:
        return value

    out: list[str] = []
    pending_charset: str | None = None
    pending = bytearray()
    pos = 0

    def flush_pending() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(charsets.decode(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        octets = _decode_word_bytes(match.group(2), match.group(3))
        if octets is None:
            flush_pending()
            out.append(between + match.group(0))
            pos = match.end()
            continue
        joined = pending_charset is not None and between.strip(" \t") == ""
        charset = match.group(1).lower()
        if not joined:
            flush_pending()
            out.append(between)
        elif charset != pending_charset:
            flush_pending()
        if pending_charset is None:
            pending_charset = charset
        pending.extend(octets)
        pos = match.end()
    flush_pending()
    out.append(value[pos:])
    return "".join(out)


class _Lexer:
    """RFC 822 lexical scanner over one structured header value (bytes)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def skip_cfws(self) -> None:
        """Skip whitespace and nested comments; an unclosed comment runs to the end."""
        data = self.data
        while self.pos < len(data):
            byte = data[self.pos]
            if byte in (32, 9, 13, 10):
                self.pos += 1
            elif byte == 40:  # "("
                depth = 0
                while self.pos < len(data):
                    byte = data[self.pos]
                    if byte == 92:  # backslash quotes the next byte
                        self.pos += 2
                        continue
                    if byte == 40:
                        depth += 1
                    elif byte == 41:
                        depth -= 1
                        if depth == 0:
                            self.pos += 1
                            break
                    self.pos += 1
            else:
                break

    def token(self) -> bytes:
        """Read an RFC 2045 token (may be empty)."""
        start = self.pos
        data = self.data
        while self.pos < len(data):
            byte = data[self.pos]
            if byte <= 32 or byte == 127 or byte in _TSPECIALS:
                break
            self.pos += 1
        return data[start : self.pos]

    def quoted_string(self) -> bytes:
        """Read a quoted-string starting at '"' and return it unquoted."""
        data = self.data
        self.pos += 1
        out = bytearray()
        while self.pos < len(data):
            byte = data[self.pos]
            if byte == 34:
                self.pos += 1
                return bytes(out)
            if byte == 92 and self.pos + 1 < len(data):
                self.pos += 1
                byte = data[self.pos]
            if byte not in (13, 10):
                out.append(byte)
            self.pos += 1
        return bytes(out)

    def value(self) -> bytes:
        """Read a parameter value: a quoted-string or a token."""
        if self.peek() == 34:
            return self.quoted_string()
        return self.token()


def _param_list(lexer: _Lexer) -> list[tuple[str, bytes]]:
    """Read `*(";" attribute "=" value)`; stop at the first malformed parameter."""
    params: list[tuple[str, bytes]] = []
    while True:
        lexer.skip_cfws()
        if lexer.peek() != 59:  # ";"
            break
        lexer.pos += 1
        lexer.skip_cfws()
        if lexer.peek() == 59:
            continue  # tolerate empty parameters ("a;;b")
        name = lexer.token()
        lexer.skip_cfws()
        if not name or lexer.peek() != 61:  # "="
            break
        lexer.pos += 1
        lexer.skip_cfws()
        params.append((name.decode("ascii", "replace"), lexer.value()))
    return params


_CONTINUATION = re.compile(r"^(.+?)\*(?:([0-9]{1,3})(\*?))?$")


def merge_rfc2231(params: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Merge RFC 2231 §3 continuations (`name*0`, `name*1*` ...) into one parameter.

    Names keep the case they were sent in. The merged name ends in "*" when
    any segment is extended (RFC 2231 §4); segments are concatenated as sent.
    Segments after a missing index are dropped. Extended and merged
    parameters follow the plain ones, in order of first appearance, as
    Dovecot 2.3 reports them.
    """
    plain: list[tuple[str, bytes]] = []
    groups: dict[str, dict[int, tuple[bool, bytes]]] = {}
    for name, value in params:
        match = _CONTINUATION.match(name)
        if match is None:
            plain.append((name, value))
            continue
        segments = groups.setdefault(match.group(1), {})
        if match.group(2) is None:
            segments.setdefault(0, (True, value))  # "name*": one extended value
        else:
            segments.setdefault(int(match.group(2)), (match.group(3) == "*", value))

    merged: list[tuple[str, bytes]] = []
    for base, segments in groups.items():
        ordered: list[tuple[bool, bytes]] = []
        index = 0
        while index in segments:
            ordered.append(segments[index])
            index += 1
        if not ordered:
            continue
        extended = any(is_extended for is_extended, _ in ordered)
        value = b"".join(part for _, part in ordered)
        merged.append((base + "*" if extended else base, value))
    return plain + merged


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type: type and subtype as sent, and the parameters."""

    type: bytes
    subtype: bytes | None
    params: list[tuple[str, bytes]]

    @property
    def mime_type(self) -> str:
        """The media type as "type/subtype" in lower case."""
        subtype = (self.subtype or b"").decode("ascii", "replace").lower()
        return self.type.decode("ascii", "replace").lower() + "/" + subtype


def parse_content_type(value: bytes) -> ContentType | None:
    """Parse a Content-Type value (RFC 2045 §5.1); None if it has no type token."""
    lexer = _Lexer(value)
    lexer.skip_cfws()
    main = lexer.token()
    if not main:
        return None
    lexer.skip_cfws()
    subtype: bytes | None = None
    if lexer.peek() == 47:  # "/"
        lexer.pos += 1
        lexer.skip_cfws()
        subtype = lexer.token() or None
    params = merge_rfc2231(_param_list(lexer)) if subtype is not None else []
    return ContentType(main, subtype, params)


def parse_token_value(value: bytes) -> bytes | None:
    """Read the leading token of a value such as Content-Transfer-Encoding."""
    lexer = _Lexer(value)
    lexer.skip_cfws()
    token = lexer.token()
    return token or None


def parse_disposition(value: bytes) -> tuple[bytes, list[tuple[str, bytes]]] | None:
    """Parse a Content-Disposition value (RFC 2183 §2) into its type and parameters."""
    lexer = _Lexer(value)
    lexer.skip_cfws()
    kind = lexer.token()
    if not kind:
        return None
    return kind, merge_rfc2231(_param_list(lexer))


def parse_language(value: bytes) -> list[bytes]:
    """Parse a Content-Language value (RFC 3282 §2) into its language tags."""
    lexer = _Lexer(value)
    tags: list[bytes] = []
    while True:
        lexer.skip_cfws()
        tag = lexer.token()
        if not tag:
            break
        tags.append(tag)
        lexer.skip_cfws()
        if lexer.peek() != 44:  # ","
            break
        lexer.pos += 1
    return tags


def decode_param(params: list[tuple[str, bytes]], name: str) -> str | None:
    """Return the decoded value of parameter `name`, or None if it is absent.

    An RFC 2231 `name*` value (charset'language'percent-encoded) wins over a
    plain `name`. Plain values may contain RFC 2047 encoded words, which
    many mailers send in file names although RFC 2047 §5 forbids it.
    """
    target = name.lower()
    for key, value in params:
        if key.lower() == target + "*":
            charset, _, rest = value.partition(b"'")
            _, _, encoded = rest.partition(b"'")
            if not rest:
                encoded, charset = charset, b""
            octets = unquote_to_bytes(encoded)
            return charsets.decode(octets, charset.decode("ascii", "replace") or None)
    for key, value in params:
        if key.lower() == target:
            return decode_rfc2047(value)
    return None
