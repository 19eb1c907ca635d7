"""One pass over a message for the anti-spam rules and the tokenizer.

Entry point: `read_content(data)` returns `MessageContent` with the
top-level header fields and the decoded text of every text part. Plain
text and HTML are kept apart, and HTML is also kept as markup for the
hidden-text rules. The attachment file names and the MIME faults found on
the way complete it. The MIME scan and the
charset decoding are those of `garrison.message`, so GB2312 or GBK text
decodes as GB18030 and mislabelled UTF-8 is recovered.

Security: never raises on message content. The caller caps the input size
(`spam.max_scan_size`), and each text part is decoded at most up to
`MAX_PART_CHARS` characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from garrison.message import charsets
from garrison.message.headers import (
    HeaderField,
    decode_param,
    decode_rfc2047,
    first_field,
)
from garrison.message.structure import Limits, Part, scan
from garrison.message.text import decode_transfer, html_to_text

MAX_PART_CHARS = 200_000
# RFC 2045 §6.1: the Content-Transfer-Encoding values; x-token extensions
# are allowed but unused in practice.
_ENCODINGS = frozenset({b"7bit", b"8bit", b"binary", b"quoted-printable", b"base64"})


@dataclass(slots=True)
class MessageContent:
    """The parts of one message that the rules and the tokenizer read."""

    fields: list[HeaderField]
    # Decoded text of text/plain parts, and of text/html parts as text.
    plain: list[str] = field(default_factory=list)
    html_text: list[str] = field(default_factory=list)
    # Raw (charset-decoded) markup of text/html parts.
    html: list[str] = field(default_factory=list)
    file_names: list[str] = field(default_factory=list)
    # MIME faults: a multipart without boundary or without any part, an
    # unknown transfer encoding.
    mime_faults: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """Return the decoded value of the first field called `name`, or None."""
        found = first_field(self.fields, name)
        if found is None:
            return None
        return decode_rfc2047(found.value).strip()

    def raw_header(self, name: str) -> bytes | None:
        """Return the unfolded raw value of the first field called `name`, or None."""
        found = first_field(self.fields, name)
        return None if found is None else found.value

    def headers(self, name: str) -> list[HeaderField]:
        """Return every field called `name` (case-insensitive), in order."""
        lower = name.lower()
        return [item for item in self.fields if item.name.lower() == lower]


def read_content(data: bytes) -> MessageContent:
    """Scan `data` once and return its fields, texts, file names and MIME faults."""
    root = scan(data, Limits(max_depth=10, max_parts=200))
    content = MessageContent(fields=root.fields)
    stack: list[Part] = [root]
    while stack:
        part = stack.pop()
        content.content_types.append(part.mime_type)
        if part.mime_type.startswith("multipart/"):
            _check_multipart(part, content)
        if part.children:
            stack.extend(reversed(part.children))
            continue
        if part.message is not None:
            stack.append(part.message)
            continue
        _read_leaf(data, part, content)
    return content


def _check_multipart(part: Part, content: MessageContent) -> None:
    content_type = part.mime.content_type
    boundary = decode_param(content_type.params, "boundary") if content_type else None
    if not boundary:
        content.mime_faults.append("multipart without boundary")
    elif not part.children:
        content.mime_faults.append("multipart without parts")


def _read_leaf(data: bytes, part: Part, content: MessageContent) -> None:
    encoding = (part.mime.encoding or b"").lower()
    if encoding and encoding not in _ENCODINGS:
        content.mime_faults.append("unknown transfer encoding")
    content.file_names.extend(_file_names(part))
    if not part.mime_type.startswith("text/"):
        return
    charset = None
    if part.mime.content_type is not None:
        charset = decode_param(part.mime.content_type.params, "charset")
    limit = MAX_PART_CHARS * 4
    end = min(part.be, part.bs + limit * 2)
    octets = decode_transfer(data[part.bs : end], part.mime.encoding)[:limit]
    text = charsets.decode(octets, charset, final=end == part.be)[:MAX_PART_CHARS]
    if part.mime_type == "text/html":
        content.html.append(text)
        content.html_text.append(html_to_text(text))
    else:
        content.plain.append(text)


def _file_names(part: Part) -> list[str]:
    names = []
    if part.mime.disposition is not None:
        names.append(decode_param(part.mime.disposition[1], "filename"))
    if part.mime.content_type is not None:
        names.append(decode_param(part.mime.content_type.params, "name"))
    return list(dict.fromkeys(name for name in names if name))
