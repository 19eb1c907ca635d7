"""Adding and removing header fields of a received message.

`read_header(store, blob)` returns the raw header section of a committed
blob and where the sender's own fields start (after the Return-Path and
Received fields our SMTP server wrote). `rewrite_header` writes a new blob:
the trace fields, then the fields the checks added, then the sender's
fields without the stripped ones, then the body, streamed in a worker
thread so memory stays bounded for large messages.

RFC 8601 §5: an Authentication-Results field that claims our authserv-id
was not written by us, so it is removed before ours is added. The X-Spam
and rspamd verdict fields are removed in the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Set as AbstractSet

from garrison.delivery.signing import MAX_HEADER_SIZE, split_message
from garrison.store import BlobRef, MailStore
from garrison.store.blobs import BlobWriter

_CHUNK = 256 * 1024
_FIELD = re.compile(rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r'[^\s;()"]+')
# The form of a well-formed authserv-id: a domain name or a token.
_PARSES = re.compile(r"[\w.-]+")


def read_header(store: MailStore, blob: BlobRef) -> tuple[bytes, int]:
    """Return (header section, end of our trace fields) of a committed blob.

    Raises SigningError when the header section exceeds MAX_HEADER_SIZE and
    OSError when the blob cannot be read.
    """
    with store.blobs.open_ref(blob) as source:
        prefix = source.read(MAX_HEADER_SIZE + _CHUNK)
    trace_end, header_end, _ = split_message(prefix)
    return prefix[:header_end], trace_end


def iter_fields(header: bytes) -> Iterable[tuple[bytes, bytes]]:
    """Yield (lower-case name, whole field with CRLFs) for each header field."""
    position = 0
    while position < len(header):
        match = _FIELD.match(header, position)
        assert match is not None
        chunk = match.group()
        position = match.end()
        name, colon, _ = chunk.partition(b":")
        yield (name.strip().lower() if colon else b""), chunk


def authserv_id(field: bytes) -> str:
    """Return the authserv-id of an Authentication-Results field, lower case.

    RFC 8601 §2.2: the id is a value, so it may be a quoted-string, and it
    may follow comments, which nest (RFC 5322 §3.2.2).
    """
    _, _, raw = field.partition(b":")
    value = raw.replace(b"\r\n", b"").decode("utf-8", "replace")
    position = _skip_cfws(value, 0)
    if value.startswith('"', position):
        chars = []
        position += 1
        while position < len(value) and value[position] != '"':
            if value[position] == "\\":
                position += 1
            chars.append(value[position : position + 1])
            position += 1
        return "".join(chars).strip().lower()
    match = _TOKEN.match(value, position)
    return match.group().lower() if match else ""


def _skip_cfws(value: str, position: int) -> int:
    """Return the position after any white space and (nested) comments."""
    depth = 0
    while position < len(value):
        char = value[position]
        if depth and char == "\\":
            position += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth and not char.isspace():
            break
        position += 1
    return position


def format_field(name: str, value: str) -> bytes:
    """Return one header field, folded before each `;`-separated part.

    Control characters in `value` (CR and LF above all, which would start a
    new field) become spaces, because values carry text from DNS records
    and other servers.
    """
    value = _CONTROL.sub(" ", value)
    parts = value.split("; ")
    text = f"{name}: " + ";\r\n\t".join(parts)
    # "replace": a stray surrogate from a decoded header must not fail delivery.
    return text.encode("utf-8", "replace") + b"\r\n"


# Fields in which our checks state their verdict; a sender's copies of them
# are removed from every message, submitted mail included.
VERDICT_FIELDS = frozenset(
    {
        "x-spam-flag",
        "x-spam-score",
        "x-spam-status",
        "x-spam-level",
        "x-spam",
        "x-spamd-result",
        "x-spamd-bar",
        "x-rspamd-action",
        "x-rspamd-score",
        "x-rspamd-server",
    }
)


def has_forged_fields(header: bytes, our_id: str) -> bool:
    """Return whether the header has a field that `strip_field` would remove."""
    return any(
        strip_field(name, field, VERDICT_FIELDS, our_id)
        for name, field in iter_fields(header)
    )


def strip_field(
    field_name: bytes, field: bytes, names: AbstractSet[str], our_id: str
) -> bool:
    """Return True when an incoming field is to be removed.

    An Authentication-Results field is removed when its authserv-id is ours,
    with or without a final dot, and also when it cannot be parsed but names
    our id before its first `;`, since a lenient reader could take it as ours.
    """
    name = field_name.decode("ascii", "replace")
    if name != "authentication-results":
        return name in names
    ours = our_id.lower().rstrip(".")
    claimed = authserv_id(field).rstrip(".")
    if claimed == ours:
        return True
    if claimed and _PARSES.fullmatch(claimed):
        return False
    _, _, value = field.partition(b":")
    head = value.split(b";", 1)[0].decode("utf-8", "replace").lower()
    return ours in head


async def rewrite_header(
    store: MailStore,
    blob: BlobRef,
    added: list[bytes],
    strip_names: AbstractSet[str],
    our_id: str,
) -> BlobRef:
    """Return a new committed blob with `added` fields and the stripped fields gone.

    Raises SigningError for an oversized header section and OSError when
    the blob cannot be read or written.
    """
    writer = await asyncio.to_thread(_write, store, blob, added, strip_names, our_id)
    try:
        return await writer.commit()
    except BaseException:
        writer.abort()
        raise


def _write(
    store: MailStore,
    blob: BlobRef,
    added: list[bytes],
    strip_names: AbstractSet[str],
    our_id: str,
) -> BlobWriter:
    with store.blobs.open_ref(blob) as source:
        prefix = source.read(MAX_HEADER_SIZE + _CHUNK)
        trace_end, header_end, _ = split_message(prefix)
        writer = store.blobs.create()
        try:
            writer.write(prefix[:trace_end])
            for field in added:
                writer.write(field)
            for name, field in iter_fields(prefix[trace_end:header_end]):
                if not strip_field(name, field, strip_names, our_id):
                    writer.write(field)
            writer.write(prefix[header_end:])
            source.seek(len(prefix))
            while chunk := source.read(_CHUNK):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
    return writer
