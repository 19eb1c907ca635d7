"""One-pass message analysis, stored with every message at delivery.

Entry point: `analyse(data)` returns a `MessageAnalysis` with the IMAP
ENVELOPE, BODYSTRUCTURE and BODY in wire form, the part offset tree that
section fetches use, and decoded header fields for SEARCH and SORT.
`MessageAnalysis.to_json()` and `from_json()` round-trip it for storage.

Security: `analyse` never raises on message content. The header block of
each part is parsed only up to `max_header_bytes`; MIME nesting deeper than
`max_depth` and parts beyond `max_parts` are not split (see structure.py).
The stdlib `email` package is used only for the Date header, never on a
whole message: its default policy is quadratic on huge headers and it
recurses on deep nesting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from garrison.message.addresses import format_addresses, parse_address_list
from garrison.message.headers import (
    HeaderField,
    decode_param,
    decode_rfc2047,
    last_field,
)
from garrison.message.imapwire import bodystructure, envelope
from garrison.message.structure import Limits, Part, scan

# Header values used for search are cut at this many bytes, so one huge
# header line cannot make every search of the mailbox slow.
MAX_SEARCH_FIELD_BYTES = 64 * 1024
MAX_REFERENCES = 1000

_BYTES_FIELDS = ("envelope", "bodystructure", "body")


@dataclass(frozen=True)
class MessageAnalysis:
    """Everything IMAP needs about one message without re-parsing it.

    `envelope`, `bodystructure` and `body` are IMAP wire values including
    their outer parentheses. `parts` is the offset tree described in
    `garrison.message.section_bytes`. `header_size` is the size of the top
    header including its blank line; `text_size` is the size of the body.
    """

    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts: dict
    size: int
    header_size: int
    text_size: int
    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    sent_date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    has_attachments: bool = False
    attachment_names: list[str] = field(default_factory=list)
    header_truncated: bool = False
    # RFC 5256 §3: SORT FROM, TO and CC compare the mailbox (local part) of
    # the first address. None in analyses stored before these were added.
    from_mailbox: str | None = None
    to_mailbox: str | None = None
    cc_mailbox: str | None = None

    def to_json(self) -> str:
        """Serialise to JSON; byte values are stored as Latin-1 text (lossless)."""
        # A shallow copy: dataclasses.asdict deep-copies the part tree, which
        # cost more than the rest of the analysis.
        values = {item.name: getattr(self, item.name) for item in dataclass_fields(self)}
        for key in _BYTES_FIELDS:
            values[key] = values[key].decode("latin-1")
        if self.sent_date is not None:
            values["sent_date"] = self.sent_date.isoformat()
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MessageAnalysis:
        """Rebuild an analysis from `to_json` output; raise ValueError if invalid."""
        values = json.loads(text)
        for key in _BYTES_FIELDS:
            values[key] = values[key].encode("latin-1")
        if values.get("sent_date") is not None:
            values["sent_date"] = datetime.fromisoformat(values["sent_date"])
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"invalid message analysis JSON: {error}") from error


def _search_value(header: HeaderField | None) -> bytes | None:
    if header is None:
        return None
    return header.value[:MAX_SEARCH_FIELD_BYTES]


def _decoded(fields: list[HeaderField], name: str) -> str:
    value = _search_value(last_field(fields, name))
    return "" if value is None else decode_rfc2047(value).strip()


def _addresses(fields: list[HeaderField], name: str) -> tuple[str, str]:
    """Return the decoded address list and the mailbox of its first address."""
    value = _search_value(last_field(fields, name))
    if value is None:
        return "", ""
    addresses = parse_address_list(value, max_addresses=1000)
    first = next(
        (address.mailbox for address in addresses if address.host is not None), None
    )
    mailbox = "" if first is None else first.decode("utf-8", "replace")
    return format_addresses(addresses), mailbox


def _sent_date(fields: list[HeaderField]) -> datetime | None:
    value = _search_value(last_field(fields, "date"))
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value[:200].decode("ascii", "replace").strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _msg_ids(value: bytes | None) -> list[str]:
    """Return the "<...>" message ids in a References or In-Reply-To value."""
    if value is None:
        return []
    ids: list[str] = []
    pos = 0
    while len(ids) < MAX_REFERENCES:
        start = value.find(b"<", pos)
        if start < 0:
            break
        end = value.find(b">", start)
        if end < 0:
            break
        ids.append(value[start : end + 1].decode("utf-8", "replace"))
        pos = end + 1
    return ids


def _attachments(root: Part) -> tuple[bool, list[str]]:
    """Find attachments: parts with an attachment disposition or a file name."""
    names: list[str] = []
    found = False
    stack = [root]
    while stack:
        part = stack.pop()
        if part.children:
            stack.extend(reversed(part.children))
            continue
        mime = part.mime
        disposition = mime.disposition
        is_attachment = (
            disposition is not None and disposition[0].lower() == b"attachment"
        )
        name = None
        if disposition is not None:
            name = decode_param(disposition[1], "filename")
        if name is None and mime.content_type is not None and part is not root:
            name = decode_param(mime.content_type.params, "name")
        if is_attachment or name:
            found = True
        if name:
            names.append(name)
        if part.message is not None:
            stack.append(part.message)
    return found, names


def analyse(
    data: bytes,
    *,
    max_header_bytes: int = 256 * 1024,
    max_depth: int = 32,
    max_parts: int = 1000,
) -> MessageAnalysis:
    """Analyse a message as stored (raw bytes); never raises on message content."""
    limits = Limits(
        max_header_bytes=max_header_bytes, max_depth=max_depth, max_parts=max_parts
    )
    root = scan(data, limits)
    fields = root.fields
    message_id = _search_value(last_field(fields, "message-id"))
    in_reply_to = _search_value(last_field(fields, "in-reply-to"))
    has_attachments, attachment_names = _attachments(root)
    truncated = any_truncated(root)
    from_, from_mailbox = _addresses(fields, "from")
    to, to_mailbox = _addresses(fields, "to")
    cc, cc_mailbox = _addresses(fields, "cc")
    return MessageAnalysis(
        envelope=envelope(fields),
        bodystructure=bodystructure(root, data, extensible=True),
        body=bodystructure(root, data, extensible=False),
        parts=root.to_dict(),
        size=len(data),
        header_size=root.bs - root.hs,
        text_size=root.be - root.bs,
        subject=_decoded(fields, "subject"),
        from_=from_,
        to=to,
        cc=cc,
        bcc=_addresses(fields, "bcc")[0],
        sent_date=_sent_date(fields),
        message_id=(message_id or b"").decode("utf-8", "replace").strip(),
        in_reply_to=(in_reply_to or b"").decode("utf-8", "replace").strip(),
        references=_msg_ids(_search_value(last_field(fields, "references"))),
        has_attachments=has_attachments,
        attachment_names=attachment_names,
        header_truncated=truncated,
        from_mailbox=from_mailbox,
        to_mailbox=to_mailbox,
        cc_mailbox=cc_mailbox,
    )


def any_truncated(root: Part) -> bool:
    """Return True if any header block in the tree was cut at the header cap."""
    stack = [root]
    while stack:
        part = stack.pop()
        if part.header_truncated:
            return True
        stack.extend(part.children or [])
        if part.message is not None:
            stack.append(part.message)
    return False
