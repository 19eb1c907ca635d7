"""Build the DKIM-Signature header field for one message (RFC 6376 §5).

`sign_message(key, header, body_chunks)` takes the message header section
(the bytes before the empty line) and the body as an iterable of chunks,
and returns the `DKIM-Signature: ...\\r\\n` field to prepend. The header
list is `SIGNED_HEADERS` as far as the message has them; From is listed
once more than it occurs (oversigned), so a verifier rejects a message to
which a second From was added. The l= tag is never used.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from garrison.dkim.canonical import RelaxedBodyHash, relaxed_header
from garrison.dkim.keys import SigningKey

# RFC 6376 §5.4.1: sign the fields a reader sees or a reply uses. From
# must always be signed.
SIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "in-reply-to",
    "references",
    "list-id",
    "list-unsubscribe",
)
OVERSIGNED_HEADERS = frozenset({"from"})

_FIELD_START = re.compile(rb"(?m)^(?=[^ \t\r\n])")
# Folded header lines stay under the RFC 5322 §2.1.1 limit of 78 characters.
_LINE_WIDTH = 76


def parse_header_fields(header: bytes) -> list[tuple[str, bytes]]:
    """Split a header section into (lower-case name, field without final CRLF).

    Continuation lines (starting with WSP) belong to the field above. A line
    without a colon is kept with an empty name, so it is never signed.
    """
    fields: list[tuple[str, bytes]] = []
    for raw in _FIELD_START.split(header):
        if not raw:
            continue
        field = raw[:-2] if raw.endswith(b"\r\n") else raw
        name, colon, _ = field.partition(b":")
        key = name.strip(b" \t").decode("latin-1").lower() if colon else ""
        fields.append((key, field))
    return fields


def select_headers(
    fields: list[tuple[str, bytes]],
) -> tuple[list[str], list[bytes]]:
    """Choose the h= names and the fields they sign, in signing order.

    RFC 6376 §5.4.2: for a name listed n times, the last n instances are
    signed from the bottom up. A name listed more often than it occurs
    signs a null field, which is how oversigning works.
    """
    names: list[str] = []
    signed: list[bytes] = []
    for name in SIGNED_HEADERS:
        instances = [field for key, field in fields if key == name]
        for field in reversed(instances):
            names.append(name)
            signed.append(field)
        if name in OVERSIGNED_HEADERS:
            names.append(name)
    return names, signed


def _fold_list(prefix: str, items: list[str], separator: str) -> list[str]:
    """Fold `prefix` + items joined by `separator` into lines of _LINE_WIDTH.

    Each line after the first starts with a space (folding white space).
    """
    lines: list[str] = []
    current = prefix
    for index, item in enumerate(items):
        piece = item + (separator if index < len(items) - 1 else "")
        if len(current) + len(piece) > _LINE_WIDTH and current.strip():
            lines.append(current)
            current = " "
        current += piece
    lines.append(current)
    return lines


def _fold_base64(prefix: str, value: str) -> list[str]:
    lines: list[str] = []
    current = prefix
    while value:
        room = max(_LINE_WIDTH - len(current) - 1, 8)
        current += value[:room]
        value = value[room:]
        lines.append(current)
        current = " "
    return lines or [prefix]


def sign_message(
    key: SigningKey,
    header: bytes,
    body_chunks: Iterable[bytes],
    timestamp: int | None = None,
) -> bytes:
    """Return the DKIM-Signature field (with CRLF) for the message.

    `header` is the header section without the empty line that ends it;
    `body_chunks` yields the body in order.
    """
    body_hash = RelaxedBodyHash()
    for chunk in body_chunks:
        body_hash.update(chunk)
    bh = base64.b64encode(body_hash.digest()).decode("ascii")

    names, signed = select_headers(parse_header_fields(header))
    stamp = int(time.time()) if timestamp is None else timestamp
    algorithm = "ed25519-sha256" if key.algorithm == "ed25519" else "rsa-sha256"
    lines = [
        f"DKIM-Signature: v=1; a={algorithm}; c=relaxed/relaxed;",
        f" d={key.domain}; s={key.selector}; t={stamp};",
        *_fold_list(" h=", names, ":"),
        f" bh={bh};",
        " b=",
    ]
    lines[-3] += ";"
    unsigned_field = "\r\n".join(lines).encode("ascii")

    # RFC 6376 §3.7: the hash input is the signed fields in canonical form,
    # then this field itself with an empty b= value and no final CRLF.
    data = b"".join(relaxed_header(field) for field in signed)
    data += relaxed_header(unsigned_field)[:-2]
    signature = base64.b64encode(_sign(key, data)).decode("ascii")

    lines[-1:] = _fold_base64(" b=", signature)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _sign(key: SigningKey, data: bytes) -> bytes:
    private_key = key.private_key
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        # RFC 8463 §3: Ed25519 (PureEdDSA) signs the SHA-256 hash of the data.
        return private_key.sign(hashlib.sha256(data).digest())
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
