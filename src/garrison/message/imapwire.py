"""IMAP wire forms of ENVELOPE, BODYSTRUCTURE and BODY.

RFC 3501 §7.4.2 and RFC 9051 §7.5.2 define the formats.

Entry points: `envelope(fields)`, `bodystructure(part, data, extensible)`.
Both return the parenthesised value exactly as it follows the FETCH item
name. The output matches Dovecot 2.3.19 byte for byte on the test corpus.
Strings are quoted unless they contain CR, LF, 8-bit bytes or more than
four quoted specials, and then they are literals. Subject and display
names are cleaned for humans: CR and LF removed, whitespace runs collapsed.

NOTE: sizes and line counts are taken from the bytes as stored. Dovecot
reports a bare-LF message as if every LF were CRLF, so its sizes differ
for such messages; mail received over SMTP has CRLF line ends.

The BODYSTRUCTURE writer walks the part tree with an explicit stack, so
its cost is linear and it cannot hit the recursion limit.
"""

from __future__ import annotations

from garrison.message.addresses import Address, parse_address_list
from garrison.message.headers import HeaderField
from garrison.message.structure import OPAQUE_TYPE, Part

# Dovecot switches from a quoted string to a literal after this many
# characters that need a backslash, since the literal is then shorter.
_MAX_QUOTED_ESCAPES = 4
NIL = b"NIL"


def literal(value: bytes) -> bytes:
    """Return `value` as an IMAP literal: {n} CRLF then the octets."""
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | None) -> bytes:
    """Return `value` as an IMAP nstring: NIL, a quoted string or a literal."""
    if value is None:
        return NIL
    escapes = value.count(b'"') + value.count(b"\\")
    if (
        escapes > _MAX_QUOTED_ESCAPES
        or b"\r" in value
        or b"\n" in value
        or b"\x00" in value
        or not value.isascii()
    ):
        return literal(value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string_for_humans(value: bytes) -> bytes:
    """Return a display string: CR/LF dropped, whitespace runs collapsed, ends trimmed.

    A value that needs no change is written quoted. Anything changed, or
    containing quoted specials or 8-bit bytes, is written as a literal (the
    Dovecot 2.3 imap_append_string_for_humans rules). NUL becomes 0x80.
    """
    needs_change = (
        b"\t" in value
        or b"\r" in value
        or b"\n" in value
        or b"  " in value
        or value.startswith(b" ")
        or value.endswith(b" ")
        or b"\x00" in value
        or b'"' in value
        or b"\\" in value
        or not value.isascii()
    )
    if not needs_change:
        return b'"' + value + b'"'
    cleaned = value.replace(b"\r", b"").replace(b"\n", b"").replace(b"\t", b" ")
    cleaned = b" ".join(word for word in cleaned.split(b" ") if word)
    cleaned = cleaned.replace(b"\x00", b"\x80")
    if not cleaned:
        return b'""'
    return literal(cleaned)


def _address_list(addresses: list[Address]) -> bytes:
    if not addresses:
        return NIL
    out = [b"("]
    for address in addresses:
        name = NIL if address.name is None else string_for_humans(address.name)
        out.append(
            b"("
            + name
            + b" "
            + nstring(address.route)
            + b" "
            + nstring(address.mailbox)
            + b" "
            + nstring(address.host)
            + b")"
        )
    out.append(b")")
    return b"".join(out)


_ENVELOPE_FIELDS = (
    "date",
    "subject",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "in-reply-to",
    "message-id",
)


def envelope(fields: list[HeaderField]) -> bytes:
    """Build the ENVELOPE of a message from its header fields.

    RFC 3501 §7.4.2: Sender and Reply-To default to From when absent. When
    a field occurs twice, the last occurrence is used.
    """
    values: dict[str, bytes] = {}
    subject: bytes | None = None
    for header in fields:
        key = header.name.lower()
        if key in _ENVELOPE_FIELDS:
            values[key] = header.value
        if key == "subject":
            # Dovecot counts removed line breaks as a change, which makes
            # a folded Subject a literal.
            subject = header.folded_value

    addresses: dict[str, list[Address]] = {}
    for key in ("from", "sender", "reply-to", "to", "cc", "bcc"):
        value = values.get(key)
        addresses[key] = [] if value is None else parse_address_list(value)
    for key in ("sender", "reply-to"):
        # RFC 3501 §7.4.2: an absent or empty Sender/Reply-To takes the From value.
        if not addresses[key]:
            addresses[key] = addresses["from"]

    pieces = [
        nstring(values.get("date")),
        NIL if subject is None else string_for_humans(subject),
        *(_address_list(addresses[key]) for key in ("from", "sender", "reply-to")),
        *(_address_list(addresses[key]) for key in ("to", "cc", "bcc")),
        nstring(values.get("in-reply-to")),
        nstring(values.get("message-id")),
    ]
    return b"(" + b" ".join(pieces) + b")"


def _params(params: list[tuple[str, bytes]], add_charset: bool) -> bytes:
    items = [
        nstring(name.encode("utf-8", "replace")) + b" " + nstring(v)
        for name, v in params
    ]
    if add_charset and not any(name.lower() == "charset" for name, _ in params):
        items.append(b'"charset" "us-ascii"')
    if not items:
        return NIL
    return b"(" + b" ".join(items) + b")"


def _extension_tail(part: Part) -> bytes:
    """Return the disposition, language and location (RFC 3501 body-ext-1part)."""
    mime = part.mime
    if mime.disposition is None:
        disposition = NIL
    else:
        kind, params = mime.disposition
        disposition = b"(" + nstring(kind) + b" " + _params(params, False) + b")"
    if mime.language:
        language = b"(" + b" ".join(nstring(tag) for tag in mime.language) + b")"
    else:
        language = NIL
    return disposition + b" " + language + b" " + nstring(mime.location)


def _type_names(part: Part) -> tuple[bytes, bytes, bool]:
    """Return the type and subtype to report, and whether the part counts as text."""
    content_type = part.mime.content_type
    if part.opaque:
        main, sub = OPAQUE_TYPE.split("/")
        return main.encode(), sub.encode(), False
    if content_type is None:
        if part.message is not None:
            return b"message", b"rfc822", False
        return b"text", b"plain", True
    text = content_type.type.lower() == b"text"
    return content_type.type, content_type.subtype or b"", text


_COUNT_CHUNK = 1 << 20


def _count_lines(data: bytes, start: int, end: int) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    # An mmap has no count(): count slice by slice to keep memory bounded.
    return sum(
        data[pos : min(pos + _COUNT_CHUNK, end)].count(b"\n")
        for pos in range(start, end, _COUNT_CHUNK)
    )


def _single_part(part: Part, data: bytes, extensible: bool) -> list:
    """Return the pieces of a non-multipart body; a nested Part is expanded later."""
    main, sub, text = _type_names(part)
    mime = part.mime
    params = (
        [] if part.opaque or mime.content_type is None else mime.content_type.params
    )
    add_charset = text and (mime.content_type is None or not part.opaque)
    size = part.be - part.bs
    head = [
        nstring(main),
        nstring(sub),
        _params(params, add_charset),
        nstring(mime.content_id),
        nstring(mime.description),
        nstring(mime.encoding or b"7bit"),
        b"%d" % size,
    ]
    pieces: list = [b"(" + b" ".join(head)]
    if part.message is not None:
        pieces.append(b" " + envelope(part.message.fields) + b" ")
        pieces.append(part.message)
        pieces.append(b" %d" % _count_lines(data, part.bs, part.be))
    elif text:
        pieces.append(b" %d" % _count_lines(data, part.bs, part.be))
    if extensible:
        pieces.append(b" " + nstring(mime.md5) + b" " + _extension_tail(part))
    pieces.append(b")")
    return pieces


def _empty_part(extensible: bool) -> bytes:
    """Return the empty text/plain body written for a multipart with no parts."""
    tail = b" NIL NIL NIL NIL" if extensible else b""
    return b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0' + tail + b")"


def _multipart(part: Part, extensible: bool) -> list:
    content_type = part.mime.content_type
    pieces: list = [b"("]
    if part.children:
        pieces.extend(part.children)
    else:
        pieces.append(_empty_part(extensible))
    subtype = content_type.subtype if content_type is not None else None
    pieces.append(b" " + nstring(subtype or b"x-unknown"))
    if extensible:
        params = content_type.params if content_type is not None else []
        pieces.append(b" " + _params(params, False) + b" " + _extension_tail(part))
    pieces.append(b")")
    return pieces


def _is_plain_7bit(part: Part) -> bool:
    """Return True for a text/plain us-ascii 7bit part with no other MIME fields.

    Dovecot 2.3 writes BODY for such a message as a fixed lower-case string
    whatever the case of the fields as sent, and this matches it.
    """
    mime = part.mime
    content_type = mime.content_type
    if part.children is not None or part.message is not None or part.opaque:
        return False
    if content_type is not None:
        if content_type.type.lower() != b"text":
            return False
        if (
            content_type.subtype is not None
            and content_type.subtype.lower() != b"plain"
        ):
            return False
        params = content_type.params
        if params and not (
            len(params) == 1
            and params[0][0].lower() == "charset"
            and params[0][1].lower() == b"us-ascii"
        ):
            return False
    if mime.encoding is not None and mime.encoding.lower() != b"7bit":
        return False
    return not (
        mime.content_id
        or mime.description
        or mime.md5
        or mime.disposition
        or mime.language
        or mime.location
    )


def bodystructure(root: Part, data: bytes, extensible: bool = True) -> bytes:
    """Build BODYSTRUCTURE (`extensible`) or BODY for the part tree under `root`."""
    if not extensible and _is_plain_7bit(root):
        size = root.be - root.bs
        lines = _count_lines(data, root.bs, root.be)
        return b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d)' % (
            size,
            lines,
        )
    out: list[bytes] = []
    stack: list = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
            continue
        part: Part = item
        if part.children is not None and not part.opaque:
            pieces = _multipart(part, extensible)
        else:
            pieces = _single_part(part, data, extensible)
        stack.extend(reversed(pieces))
    return b"".join(out)
