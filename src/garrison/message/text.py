"""Plain text of a message for full-text search.

Entry points: `extract_search_text(data, parts, limit)` returns the
decoded top-level header fields and, separately, the body text: attachment
file names, the header fields of encapsulated messages and the text parts
(base64 and quoted-printable decoded, charset decoded, HTML reduced to its
text), together cut at `limit` characters. `extract_text` joins the two.

Memory: each part is sliced and decoded only as far as the remaining
character budget needs, so a 100 MB body costs a few times `limit`, not a
few times the body.
"""

from __future__ import annotations

import binascii
import html
from dataclasses import dataclass

from garrison.message import charsets
from garrison.message.headers import (
    HeaderField,
    decode_param,
    decode_rfc2047,
    parse_content_type,
    parse_disposition,
    parse_header_block,
    parse_token_value,
)
from garrison.message.structure import Limits, scan

# A decoded character takes at most 4 bytes in any supported charset.
_MAX_BYTES_PER_CHAR = 4
_SKIPPED_BLOCKS = ("script", "style", "head")


def decode_transfer(encoded: bytes, encoding: bytes | None) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); unknown ones pass through."""
    name = (encoding or b"").lower()
    if name == b"base64":
        return _decode_base64(encoded)
    if name == b"quoted-printable":
        return binascii.a2b_qp(encoded)
    return encoded


def _decode_base64(encoded: bytes) -> bytes:
    """Decode base64 leniently: skip invalid bytes, ignore a broken tail."""
    compact = encoded.translate(None, b" \t\r\n")
    compact = compact[: len(compact) - len(compact) % 4]
    try:
        return binascii.a2b_base64(compact, strict_mode=False)
    except (binascii.Error, ValueError):
        return b""


def html_to_text(markup: str) -> str:
    """Reduce HTML to its text: drop tags, script/style/head content, unescape entities.

    Linear: one left-to-right pass with str.find, no backtracking regex.
    """
    lower = markup.lower()
    out: list[str] = []
    pos = 0
    size = len(markup)
    while pos < size:
        start = markup.find("<", pos)
        if start < 0:
            out.append(markup[pos:])
            break
        out.append(markup[pos:start])
        end = markup.find(">", start)
        if end < 0:
            break
        tag = lower[start + 1 : end].split(maxsplit=1)
        name = tag[0] if tag else ""
        pos = end + 1
        if name in _SKIPPED_BLOCKS:
            close = lower.find("</" + name, pos)
            if close < 0:
                break
            pos = close
        elif name in ("br", "p", "/p", "div", "/div", "tr", "li", "/h1", "/h2", "/h3"):
            out.append("\n")
        else:
            out.append(" ")
    return html.unescape("".join(out))


def _header_text(headers: list[HeaderField]) -> list[str]:
    return [f"{header.name}: {decode_rfc2047(header.value)}" for header in headers]


def _part_headers(data: bytes, part: dict) -> list[HeaderField]:
    return parse_header_block(data[part["hs"] : part["bs"]])


def _part_text(data: bytes, part: dict, headers: list[HeaderField], budget: int) -> str:
    content_type = None
    encoding = None
    for header in headers:
        name = header.name.lower()
        if name == "content-type" and content_type is None:
            content_type = parse_content_type(header.value)
        elif name == "content-transfer-encoding" and encoding is None:
            encoding = parse_token_value(header.value)
    charset = None
    if content_type is not None:
        charset = decode_param(content_type.params, "charset")

    # Slice only what the budget can use: base64 grows 4/3 plus line ends,
    # quoted-printable at most 3 bytes per octet.
    max_octets = budget * _MAX_BYTES_PER_CHAR
    factor = {b"base64": 2, b"quoted-printable": 3}.get((encoding or b"").lower(), 1)
    end = min(part["be"], part["bs"] + max_octets * factor)
    truncated = end < part["be"]
    octets = decode_transfer(data[part["bs"] : end], encoding)
    if len(octets) > max_octets:
        octets = octets[:max_octets]
        truncated = True
    text = charsets.decode(octets, charset, final=not truncated)
    if part["ct"] == "text/html":
        text = html_to_text(text)
    return text


def _file_names(headers: list[HeaderField]) -> list[str]:
    names = []
    for header in headers:
        name = header.name.lower()
        if name == "content-disposition":
            parsed = parse_disposition(header.value)
            if parsed is not None:
                names.append(decode_param(parsed[1], "filename"))
        elif name == "content-type":
            parsed_type = parse_content_type(header.value)
            if parsed_type is not None:
                names.append(decode_param(parsed_type.params, "name"))
    return [name for name in names if name]


@dataclass(frozen=True, slots=True)
class SearchText:
    """Decoded text of one message, split as IMAP SEARCH needs it.

    `headers` contains the top-level header fields as "Name: value" lines;
    `body` contains everything after them (RFC 3501 §6.4.4: BODY searches
    the body only, TEXT searches both).
    """

    headers: str
    body: str


def extract_text(data: bytes, parts: dict | None = None, limit: int = 1_000_000) -> str:
    """Return searchable text: headers, file names and text parts, up to `limit` chars.

    `parts` is `MessageAnalysis.parts`; without it the message is scanned
    first. Headers of encapsulated messages are included. Never raises on
    message content.
    """
    text = extract_search_text(data, parts, limit)
    if not text.headers:
        return text.body[:limit]
    return (text.headers + "\n" + text.body)[:limit]


def extract_search_text(
    data: bytes, parts: dict | None = None, limit: int = 1_000_000
) -> SearchText:
    """Return the top-level header text and the body text, together at most `limit` chars.

    The arguments are those of `extract_text`. Never raises on message
    content.
    """
    if parts is None:
        parts = scan(data, Limits()).to_dict()
    # Each header block is parsed once: the root's serves both the header
    # text and, for a single-part message, the body's charset and encoding.
    root_headers = _part_headers(data, parts)
    headers = "\n".join(_header_text(root_headers))[:limit]
    body = _body_text(data, parts, limit - len(headers) - 1, root_headers)
    return SearchText(headers, body)


def _body_text(
    data: bytes, parts: dict, limit: int, root_headers: list[HeaderField]
) -> str:
    chunks: list[str] = []
    remaining = limit
    # The root's own header block is not body text, so it starts as a leaf
    # or container without its header lines.
    stack = [(parts, False)]
    while stack and remaining > 0:
        node, is_message = stack.pop()
        headers = root_headers if node is parts else None
        if is_message:
            headers = _part_headers(data, node)
            for line in _header_text(headers):
                chunks.append(line)
                remaining -= len(line) + 1
        if "sub" in node:
            stack.extend((child, False) for child in reversed(node["sub"]))
            continue
        if "msg" in node:
            stack.append((node["msg"], True))
            continue
        if headers is None:
            headers = _part_headers(data, node)
        for name in _file_names(headers):
            chunks.append(name)
            remaining -= len(name) + 1
        if node["ct"].startswith("text/") and remaining > 0:
            text = _part_text(data, node, headers, remaining)
            chunks.append(text)
            remaining -= len(text) + 1
    return "\n".join(chunks)[: max(limit, 0)]
