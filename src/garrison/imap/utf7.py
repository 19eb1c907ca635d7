"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3).

`encode` turns a Unicode mailbox name into its wire form; `decode` parses
the wire form strictly and raises `UTF7Error` for anything a conforming
client would not send: raw 8-bit or control bytes, an unterminated shift,
padding, base64 that encodes printable ASCII, two adjacent shifts (a
non-shortest form), leftover non-zero bits and unpaired surrogates. Strict
decoding keeps one name from having two spellings in the store.
"""

from __future__ import annotations

import base64
import binascii


class UTF7Error(ValueError):
    """A mailbox name that is not valid modified UTF-7."""


_BASE64_ALPHABET = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
)


def _is_direct(char: str) -> bool:
    # RFC 3501 §5.1.3: printable US-ASCII except "&" represent themselves.
    return "\x20" <= char <= "\x7e"


def _encode_run(run: str) -> str:
    utf16 = run.encode("utf-16-be")
    encoded = base64.b64encode(utf16).rstrip(b"=").replace(b"/", b",")
    return "&" + encoded.decode("ascii") + "-"


def encode(name: str) -> str:
    """Encode a Unicode mailbox name as modified UTF-7."""
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if _is_direct(char):
            if run:
                out.append(_encode_run("".join(run)))
                run = []
            # RFC 3501 §5.1.3: "&" is represented as "&-".
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        out.append(_encode_run("".join(run)))
    return "".join(out)


def _decode_run(chunk: bytes) -> str:
    if any(byte not in _BASE64_ALPHABET for byte in chunk):
        raise UTF7Error("invalid base64 character in modified UTF-7 shift")
    bit_count = len(chunk) * 6
    # Every shift carries whole UTF-16 code units; fewer than 6 bits may be
    # left over as padding, and those must be zero.
    if bit_count % 16 >= 6:
        raise UTF7Error("modified UTF-7 shift does not end on a UTF-16 code unit")
    padded = chunk.replace(b",", b"/") + b"=" * (-len(chunk) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as exc:
        raise UTF7Error("invalid base64 in modified UTF-7 shift") from exc
    if len(raw) % 2:
        raise UTF7Error("modified UTF-7 shift does not end on a UTF-16 code unit")
    if base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") != chunk:
        raise UTF7Error("non-zero padding bits in modified UTF-7 shift")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise UTF7Error("unpaired surrogate in modified UTF-7 shift") from exc
    if any(_is_direct(char) for char in text):
        # RFC 3501 §5.1.3: printable US-ASCII must not be base64-encoded.
        raise UTF7Error("modified UTF-7 shift encodes printable ASCII")
    if any(char < "\x20" or "\x7f" <= char <= "\x9f" for char in text):
        raise UTF7Error("mailbox name contains a control character")
    return text


def decode(wire: bytes | str) -> str:
    """Decode a modified UTF-7 mailbox name strictly.

    Raises `UTF7Error` with a short reason when the name is not in the one
    canonical form that `encode` produces.
    """
    data = wire.encode("latin-1") if isinstance(wire, str) else bytes(wire)
    out: list[str] = []
    index = 0
    previous_was_shift = False
    while index < len(data):
        byte = data[index]
        if byte < 0x20 or byte > 0x7E:
            raise UTF7Error("mailbox name contains a byte outside printable ASCII")
        if byte != 0x26:  # "&"
            out.append(chr(byte))
            index += 1
            previous_was_shift = False
            continue
        end = data.find(b"-", index + 1)
        if end < 0:
            raise UTF7Error("unterminated modified UTF-7 shift (missing '-')")
        chunk = data[index + 1 : end]
        if not chunk:
            out.append("&")
            previous_was_shift = False
        else:
            if previous_was_shift:
                # Two adjacent shifts must be written as one.
                raise UTF7Error("adjacent modified UTF-7 shifts (non-shortest form)")
            out.append(_decode_run(chunk))
            previous_was_shift = True
        index = end + 1
    return "".join(out)
