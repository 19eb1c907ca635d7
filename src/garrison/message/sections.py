"""IMAP section fetching over the stored part offset tree (RFC 3501 §6.4.5).

Entry points: `section_bytes(data, parts, path, kind, fields, not_)` for an
already parsed section, and `section(data, parts, spec)` that parses the
section text first ("1.2.HEADER.FIELDS (From To)").

The offset tree is `MessageAnalysis.parts`: a node is {"hs", "bs", "be",
"ct", "sub" (multipart children), "msg" (the message inside a
message/rfc822 part)}. Rules, as RFC 3501 §6.4.5 states them and Dovecot
2.3 applies them:
- BODY[] is the whole message; BODY[TEXT] and BODY[HEADER] its body and header.
- Part 1 of a non-multipart message is its body, and so BODY[1] of a
  non-multipart part is that part's body.
- After a message/rfc822 part, the next number selects a part of the
  encapsulated message, and HEADER/TEXT refer to that message.
- MIME is the part's own header. HEADER.FIELDS keeps the matching lines
  (names compared case-insensitively) and ends with the blank line.
- A part number that does not exist returns b"".
"""

from __future__ import annotations

from collections.abc import Sequence

from garrison.message.headers import parse_header_block

SECTION_KINDS = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


def _find_part(parts: dict, path: Sequence[int]) -> dict | None:
    node = parts
    for index, number in enumerate(path):
        if index > 0 and "msg" in node:
            node = node["msg"]
        if "sub" in node:
            children = node["sub"]
            if not 1 <= number <= len(children):
                return None
            node = children[number - 1]
        elif number != 1:
            return None
    return node


def _header_fields(block: bytes, names: Sequence[str], exclude: bool) -> bytes:
    selected = {name.lower() for name in names}
    matching = [
        header.raw
        for header in parse_header_block(block)
        if (header.name.lower() in selected) != exclude
    ]
    lines = b"".join(raw if raw.endswith(b"\n") else raw + b"\r\n" for raw in matching)
    return lines + b"\r\n"


def section_bytes(
    data: bytes,
    parts: dict,
    path: tuple[int, ...] = (),
    kind: str | None = None,
    fields: list[str] | None = None,
    not_: bool = False,
) -> bytes:
    """Return the octets of BODY[path.kind]; b"" if the part does not exist.

    `kind` is None for BODY[path], or one of SECTION_KINDS; "HEADER.FIELDS"
    with `not_=True` is the same as "HEADER.FIELDS.NOT". Raises ValueError
    for an unknown kind or for MIME without a part number (the IMAP parser
    rejects both before this is called).
    """
    if kind is not None:
        kind = kind.upper()
        if kind not in SECTION_KINDS:
            raise ValueError(f"unknown section kind {kind!r}")
        if kind == "HEADER.FIELDS.NOT":
            kind, not_ = "HEADER.FIELDS", True
    if kind is None and not path:
        return data
    node = _find_part(parts, path)
    if node is None:
        return b""
    if kind is None:
        return data[node["bs"] : node["be"]]
    if kind == "MIME":
        if not path:
            raise ValueError("MIME needs a part number (RFC 3501 §6.4.5)")
        return data[node["hs"] : node["bs"]]

    # RFC 3501 §6.4.5: HEADER and TEXT after a part number refer to the
    # message inside that message/rfc822 part.
    message = node.get("msg", node) if path else node
    header = data[message["hs"] : message["bs"]]
    if kind == "HEADER":
        return header
    if kind == "TEXT":
        return data[message["bs"] : message["be"]]
    return _header_fields(header, fields or [], not_)


def _parse_field_names(text: str) -> list[str]:
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"invalid header field list {text!r}: expected (name ...)")
    names = []
    for name in text[1:-1].split():
        names.append(name.strip('"'))
    return names


def section(data: bytes, parts: dict, spec: str) -> bytes:
    """Return the octets of BODY[spec], spec being the text between the brackets.

    Examples: "", "TEXT", "1.2", "2.MIME", "3.HEADER.FIELDS (From Subject)".
    Raises ValueError if the spec is malformed.
    """
    spec = spec.strip()
    head, _, field_list = spec.partition(" ")
    path: list[int] = []
    kind: str | None = None
    for index, token in enumerate(head.split(".") if head else []):
        if token.isdigit() and kind is None:
            number = int(token)
            if number == 0:
                raise ValueError(f"invalid section {spec!r}: part numbers start at 1")
            path.append(number)
            continue
        kind = ".".join(head.split(".")[index:]).upper()
        break
    names = None
    if kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        names = _parse_field_names(field_list)
    elif field_list.strip():
        raise ValueError(f"invalid section {spec!r}: unexpected {field_list!r}")
    if kind is not None and kind not in SECTION_KINDS:
        raise ValueError(f"invalid section {spec!r}: unknown kind {kind!r}")
    return section_bytes(data, parts, tuple(path), kind, names)
