"""MIME structure scan: byte offsets of every part, found on the raw bytes.

Entry point: `scan(data, limits)` returns the root `Part`. Each part records
where its header starts (hs), where its body starts (bs) and ends (be), its
Content-* fields, its children (multipart) or its encapsulated message
(message/rfc822).

The scan is one forward pass driven by `bytes.find`, with an explicit stack
of open multiparts instead of recursion, so deep nesting cannot exhaust the
Python stack. A boundary line is a line that starts with "--" and the
boundary; trailing text is ignored, as Dovecot 2.3 does, and the longest
matching boundary wins. An outer boundary also ends every part nested
inside it (RFC 2046 §5.1.2).
The CRLF before a boundary line belongs to the delimiter (RFC 2046
§5.1.1), so it is not part of the preceding body.

Limits (security, not RFC): only the first `max_header_bytes` of each
header block are parsed; parts deeper than `max_depth` and parts after the
first `max_parts` are not split further, so their bytes stay in the body of
the part that contains them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from garrison.message.headers import (
    ContentType,
    HeaderField,
    first_field,
    parse_content_type,
    parse_disposition,
    parse_header_block,
    parse_language,
    parse_token_value,
)

# RFC 2046 §5.1.1 caps boundaries at 70 characters, but longer ones occur
# in real mail. A boundary parameter longer than this counts as missing.
MAX_BOUNDARY_BYTES = 1000
OPAQUE_TYPE = "application/octet-stream"



def _starts_with(data: bytes, prefix: bytes, pos: int) -> bool:
    # Slicing instead of bytes.startswith, so a read-only mmap of a large
    # stored message works as `data` too.
    return data[pos : pos + len(prefix)] == prefix

@dataclass(frozen=True, slots=True)
class Limits:
    """Caps applied during the scan (see the module docstring)."""

    max_header_bytes: int = 256 * 1024
    max_depth: int = 32
    max_parts: int = 1000


@dataclass(slots=True)
class MimeFields:
    """The Content-* fields of one part, first occurrence of each (as Dovecot)."""

    content_type: ContentType | None = None
    encoding: bytes | None = None
    content_id: bytes | None = None
    description: bytes | None = None
    md5: bytes | None = None
    disposition: tuple[bytes, list[tuple[str, bytes]]] | None = None
    language: list[bytes] | None = None
    location: bytes | None = None


@dataclass(slots=True, eq=False)
class Part:
    """One MIME part; a message node (root or encapsulated) is a part too."""

    hs: int
    depth: int
    bs: int = -1
    be: int = -1
    mime_type: str = "text/plain"
    mime: MimeFields = field(default_factory=MimeFields)
    fields: list[HeaderField] = field(default_factory=list)
    header_truncated: bool = False
    is_message: bool = False
    children: list[Part] | None = None
    message: Part | None = None
    opaque: bool = False

    def to_dict(self) -> dict:
        """Return the JSON-serialisable offset tree (keys hs, bs, be, ct, sub, msg)."""
        root: dict = {}
        stack: list[tuple[Part, dict]] = [(self, root)]
        while stack:
            part, node = stack.pop()
            node.update(hs=part.hs, bs=part.bs, be=part.be, ct=part.mime_type)
            if part.children is not None:
                node["sub"] = []
                for child in part.children:
                    child_node: dict = {}
                    node["sub"].append(child_node)
                    stack.append((child, child_node))
            if part.message is not None:
                node["msg"] = {}
                stack.append((part.message, node["msg"]))
        return root


def _read_mime_fields(fields: list[HeaderField]) -> MimeFields:
    mime = MimeFields()
    header = first_field(fields, "content-type")
    if header is not None:
        mime.content_type = parse_content_type(header.value)
    header = first_field(fields, "content-transfer-encoding")
    if header is not None:
        mime.encoding = parse_token_value(header.value)
    header = first_field(fields, "content-disposition")
    if header is not None:
        mime.disposition = parse_disposition(header.value)
    header = first_field(fields, "content-language")
    if header is not None:
        mime.language = parse_language(header.value) or None
    for name in (
        "content-id",
        "content-description",
        "content-md5",
        "content-location",
    ):
        header = first_field(fields, name)
        if header is None:
            continue
        attribute = {
            "content-id": "content_id",
            "content-description": "description",
            "content-md5": "md5",
            "content-location": "location",
        }[name]
        setattr(mime, attribute, header.value)
    return mime


@dataclass(slots=True)
class _Frame:
    """An open multipart on the scan stack."""

    part: Part
    delimiter: bytes  # b"--" + boundary
    child: Part | None = None
    closed: bool = False  # after the close-delimiter: epilogue


@dataclass(slots=True)
class _Hit:
    line: int  # offset of the boundary line
    line_end: int  # offset just after the line's LF (or end of data)
    frame: int  # index into the frame stack
    close: bool


class _Scanner:
    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data = data
        self.limits = limits
        self.frames: list[_Frame] = []
        self.part_count = 1
        self.all_parts: list[Part] = []
        self.prefixes: set[bytes] = set()
        self.prefix_len = 0
        self.cached: tuple[int, _Hit | None] | None = None
        # Offset up to which bytes belong to a header or a boundary line.
        self.consumed = 0

    # -- boundary search ---------------------------------------------------

    def _frames_changed(self) -> None:
        open_delimiters = [frame.delimiter for frame in self.frames if not frame.closed]
        self.cached = None
        if not open_delimiters:
            self.prefix_len = 0
            self.prefixes = set()
            return
        self.prefix_len = min(8, min(len(d) for d in open_delimiters))
        self.prefixes = {d[: self.prefix_len] for d in open_delimiters}

    def _match(self, line: int) -> _Hit | None:
        """Return the boundary hit for the line at `line`, if it is a boundary line.

        The line only has to start with a delimiter. When several open
        delimiters are prefixes of the line, the longest wins and, among
        equal lengths, the innermost (Dovecot 2.3 message-parser rules).
        """
        data = self.data
        if data[line : line + self.prefix_len] not in self.prefixes:
            return None
        best = -1
        best_len = 0
        for index in range(len(self.frames) - 1, -1, -1):
            frame = self.frames[index]
            size = len(frame.delimiter)
            if frame.closed or size <= best_len:
                continue
            if _starts_with(data, frame.delimiter, line):
                best, best_len = index, size
        if best < 0:
            return None
        after = line + best_len
        close = _starts_with(data, b"--", after)
        newline = data.find(b"\n", after)
        line_end = len(data) if newline < 0 else newline + 1
        return _Hit(line, line_end, best, close)

    def next_boundary(self, pos: int) -> _Hit | None:
        """Return the first boundary line at or after line start `pos`."""
        if self.prefix_len == 0:
            return None
        if self.cached is not None and self.cached[0] <= pos:
            hit = self.cached[1]
            if hit is None or hit.line >= pos:
                return hit
        data = self.data
        hit = None
        if _starts_with(data, b"--", pos):
            hit = self._match(pos)
        search = pos
        while hit is None:
            found = data.find(b"\n--", search)
            if found < 0:
                break
            hit = self._match(found + 1)
            search = found + 1
        self.cached = (pos, hit)
        return hit

    # -- parts -------------------------------------------------------------

    def _new_part(self, hs: int, depth: int, default_type: str) -> Part:
        part = Part(hs=hs, depth=depth, mime_type=default_type)
        self.all_parts.append(part)
        return part

    def _end_before(self, line: int) -> int:
        """Return where a body ends when a boundary line starts at `line`.

        The line end before the boundary is not body (RFC 2046 §5.1.1)
        unless it already ended a header or another boundary line: then,
        as in Dovecot, it stays where it was counted.
        """
        if line <= self.consumed:
            return line
        if line >= 2 and self.data[line - 2 : line] == b"\r\n":
            return line - 2
        if line >= 1 and self.data[line - 1 : line] == b"\n":
            return line - 1
        return line

    def _finish(self, part: Part | None, end: int) -> int:
        """End `part` and its encapsulated messages at `end`; return the end used.

        A header ends at its blank line even when that line's CRLF is also
        the one before a boundary (Dovecot counts it into the header), so a
        part may end after `end` but never before its body starts.
        """
        chain: list[Part] = []
        while part is not None:
            chain.append(part)
            part = part.message
        for node in chain:
            if node.bs < 0:
                node.bs = max(node.hs, end)
            end = max(end, node.bs)
        for node in chain:
            node.be = end
        return end

    def _read_header(self, part: Part) -> _Hit | None:
        """Find the end of `part`'s header and classify the part.

        Return the boundary hit that interrupted the header, if one did.
        """
        data = self.data
        start = part.hs
        hit = self.next_boundary(start)
        stop = len(data) if hit is None else hit.line
        interrupted = None
        if _starts_with(data, b"\r\n", start) and start + 2 <= stop:
            part.bs = start + 2
        elif _starts_with(data, b"\n", start) and start + 1 <= stop:
            part.bs = start + 1
        else:
            crlf = data.find(b"\n\r\n", start, stop)
            lf = data.find(b"\n\n", start, stop)
            if lf >= 0 and (crlf < 0 or lf < crlf):
                part.bs = lf + 2
            elif crlf >= 0:
                part.bs = crlf + 3
            elif hit is not None:
                # A header cut short by a boundary keeps its last line end,
                # as Dovecot counts it.
                part.bs = hit.line
                interrupted = hit
            else:
                part.bs = len(data)

        self.consumed = part.bs
        header_end = min(part.bs, start + self.limits.max_header_bytes)
        part.header_truncated = header_end < part.bs
        part.fields = parse_header_block(data[start:header_end])
        # A message (not a multipart child) is MIME only with MIME-Version or
        # Content-Type; otherwise Dovecot ignores its other Content-* fields.
        if not part.is_message or any(
            header.name.lower() in ("mime-version", "content-type")
            for header in part.fields
        ):
            part.mime = _read_mime_fields(part.fields)
        content_type = part.mime.content_type
        if content_type is not None and content_type.subtype is not None:
            part.mime_type = content_type.mime_type
        return interrupted

    def _open_body(self, part: Part, header_interrupted: bool) -> Part | None:
        """Start the body: push a multipart frame or return the encapsulated message."""
        kind = part.mime_type
        nested = kind.startswith("multipart/") or kind == "message/rfc822"
        if not nested:
            return None
        if part.depth >= self.limits.max_depth:
            part.opaque = True
            part.mime_type = OPAQUE_TYPE
            return None
        if kind == "message/rfc822":
            # Counting the encapsulated message as a part bounds the total work.
            if self.part_count >= self.limits.max_parts:
                part.opaque = True
                part.mime_type = OPAQUE_TYPE
                return None
            self.part_count += 1
            message = self._new_part(part.bs, part.depth + 1, "text/plain")
            message.is_message = True
            part.message = message
            return message

        part.children = []
        boundary = None
        if part.mime.content_type is not None:
            for name, value in part.mime.content_type.params:
                if name.lower() == "boundary":
                    boundary = value
                    break
        if not boundary or len(boundary) > MAX_BOUNDARY_BYTES or header_interrupted:
            return None
        self.frames.append(_Frame(part, b"--" + boundary))
        self._frames_changed()
        return None

    def _handle_boundary(self, hit: _Hit) -> Part | None:
        """Apply a boundary line; return the new child whose header starts after it."""
        if not hit.close and self.part_count >= self.limits.max_parts:
            return None  # over the part cap: the delimiter stays body content
        end = self._end_before(hit.line)
        self.consumed = hit.line_end
        while len(self.frames) - 1 > hit.frame:
            frame = self.frames.pop()
            inner_end = self._finish(frame.child, end)
            self._finish(frame.part, inner_end)
        frame = self.frames[hit.frame]
        self._finish(frame.child, end)
        frame.child = None
        if hit.close:
            frame.closed = True
            self._frames_changed()
            return None
        self._frames_changed()
        self.part_count += 1
        parent = frame.part
        default = (
            "message/rfc822" if parent.mime_type == "multipart/digest" else "text/plain"
        )
        child = self._new_part(hit.line_end, parent.depth + 1, default)
        assert parent.children is not None
        parent.children.append(child)
        frame.child = child
        return child

    def run(self) -> Part:
        data = self.data
        root = self._new_part(0, 0, "text/plain")
        root.is_message = True
        pending: Part | None = root
        pos = 0
        while True:
            if pending is not None:
                part = pending
                pending = None
                interrupted = self._read_header(part)
                pending = self._open_body(part, interrupted is not None)
                if pending is not None:
                    if interrupted is not None:
                        pending.bs = pending.hs
                        pending = None
                    else:
                        continue
                pos = part.bs
                if interrupted is not None:
                    pending = self._handle_boundary(interrupted)
                    pos = interrupted.line_end
                    continue
            hit = self.next_boundary(pos)
            if hit is None:
                break
            pending = self._handle_boundary(hit)
            pos = hit.line_end
        for part in self.all_parts:
            if part.bs < 0:
                part.bs = max(part.hs, len(data))
            if part.be < 0:
                part.be = len(data)
        return root


def scan(data: bytes, limits: Limits | None = None) -> Part:
    """Scan `data` and return the root part with every part's offsets; never raises."""
    return _Scanner(data, limits or Limits()).run()
