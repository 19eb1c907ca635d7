"""FETCH items of BINARY (RFC 3516) and OBJECTID (RFC 8474).

BINARY[part] returns the part's body with its Content-Transfer-Encoding
undone; BINARY.SIZE[part] returns the size of that decoded body. An
encoding other than 7bit, 8bit, binary, base64 and quoted-printable gets
NO [UNKNOWN-CTE] (RFC 3516 §4.3). BINARY[] is the whole message as stored,
which has no encoding of its own to undo.

EMAILID is derived from the message's content-addressed blob, so copies
of one message share it and it never changes (RFC 8474 §5.1). THREADID is
NIL, which RFC 8474 §5.2 allows for a server that does not assign them.
"""

from __future__ import annotations

from typing import Protocol

from garrison.imap import errors
from garrison.imap.command import FetchAtt
from garrison.imap.encoder import literal
from garrison.imap.errors import no
from garrison.message import MessageAnalysis, section_bytes
from garrison.message.headers import first_field, parse_header_block, parse_token_value
from garrison.message.text import decode_transfer
from garrison.store import MessageRecord

_IDENTITY_ENCODINGS = frozenset({b"", b"7bit", b"8bit", b"binary"})
_DECODED_ENCODINGS = frozenset({b"base64", b"quoted-printable"})


class FetchedMessage(Protocol):
    """The record, analysis and bytes of one message, as FETCH reads them."""

    record: MessageRecord

    @property
    def meta(self) -> MessageAnalysis: ...

    @property
    def data(self) -> bytes: ...


def email_id(record: MessageRecord) -> str:
    """Return the RFC 8474 EMAILID: "E" and the blob id (letters and digits)."""
    return "E" + record.blob_id


def binary_section(message: FetchedMessage, path: tuple[int, ...]) -> bytes:
    """Return the decoded body of the part at `path`; raise NO [UNKNOWN-CTE]."""
    data = message.data
    if not path:
        return data
    parts = message.meta.parts
    body = section_bytes(data, parts, path, None, [])
    mime_header = section_bytes(data, parts, path, "MIME", [])
    field = first_field(parse_header_block(mime_header), "content-transfer-encoding")
    encoding = (parse_token_value(field.value) or b"") if field is not None else b""
    encoding = encoding.lower()
    if encoding in _IDENTITY_ENCODINGS:
        return body
    if encoding in _DECODED_ENCODINGS:
        return decode_transfer(body, encoding)
    raise no(
        f"Unknown Content-Transfer-Encoding {encoding.decode('ascii', 'replace')}",
        errors.UNKNOWN_CTE,
    )


def binary_item(message: FetchedMessage, att: FetchAtt) -> bytes:
    """Return the BINARY[...] or BINARY.SIZE[...] item of a FETCH response."""
    assert att.section is not None
    spec = att.section.spec.encode("ascii")
    decoded = binary_section(message, att.section.path)
    if att.name == "BINARY.SIZE":
        return b"BINARY.SIZE[" + spec + b"] %d" % len(decoded)
    origin = b""
    if att.partial is not None:
        start, length = att.partial
        decoded = decoded[start : start + length]
        origin = b"<%d>" % start
    # RFC 3516 §4.3: literal8 when the data contains NUL, else a literal.
    value = b"~" + literal(decoded) if b"\x00" in decoded else literal(decoded)
    return b"BINARY[" + spec + b"]" + origin + b" " + value


def object_id_item(record: MessageRecord, name: str) -> bytes:
    """Return the EMAILID or THREADID item of a FETCH response (RFC 8474 §5)."""
    if name == "EMAILID":
        return b"EMAILID (" + email_id(record).encode("ascii") + b")"
    return b"THREADID NIL"
