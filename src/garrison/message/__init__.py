"""Safe MIME analysis, computed once at delivery and stored with the message.

Entry points:
- `analyse(data)` -> `MessageAnalysis`: IMAP ENVELOPE, BODYSTRUCTURE and
  BODY in wire form, the part offset tree and decoded search fields.
- `section_bytes(data, parts, path, kind)` and `section(data, parts, spec)`:
  the octets of an IMAP BODY[section] (RFC 3501 §6.4.5).
- `extract_text(data, parts)` and `extract_search_text(data, parts)`:
  decoded header and body text for search, joined or apart.
- `charsets.decode`, `headers.decode_rfc2047`: charset and RFC 2047 decoding.

RFCs: 2045, 2046, 2047, 2183, 2231, 3282, 5322, 3501 §6.4.5 and §7.4.2,
9051 §7.5.2. Security: analysis never raises on message content (a property test feeds
it random and mutated messages). It caps header size, MIME depth and part
count before it parses anything, and its time is linear in the message size
times at most the depth cap.
"""

from garrison.message import charsets, headers
from garrison.message.analysis import MessageAnalysis, analyse
from garrison.message.sections import section, section_bytes
from garrison.message.text import SearchText, extract_search_text, extract_text

__all__ = [
    "MessageAnalysis",
    "SearchText",
    "analyse",
    "charsets",
    "extract_search_text",
    "extract_text",
    "headers",
    "section",
    "section_bytes",
]
