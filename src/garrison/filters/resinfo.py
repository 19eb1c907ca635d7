"""Formatting of RFC 8601 resinfo values and comments.

`pvalue` and `comment` make text taken from a message or the SMTP dialogue
(a HELO name, a signature prefix, a DNS error) safe to place in an
Authentication-Results field, so the field we write always parses.
"""

from __future__ import annotations

import re

# RFC 2045 §5.1: a token is any printable US-ASCII character except SPACE
# and the tspecials ()<>@,;:\"/[]?=.
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def pvalue(text: str) -> str:
    """Return `text` as an RFC 8601 pvalue: a token, [local-part]@domain or a
    quoted-string. A domain name is a token, since dots and hyphens are allowed.
    """
    if _TOKEN.match(text):
        return text
    local, at, domain = text.rpartition("@")
    if at and _TOKEN.match(domain) and (not local or _TOKEN.match(local)):
        return text
    # RFC 5322 §3.2.4: a quoted-string escapes backslash and DQUOTE.
    cleaned = _CONTROL.sub("", text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{cleaned}"'


def comment(text: str) -> str:
    """Return `text` as an RFC 5322 comment, with parentheses and controls escaped."""
    cleaned = _CONTROL.sub(" ", text).replace("\\", "\\\\")
    cleaned = cleaned.replace("(", "\\(").replace(")", "\\)")
    return f"({cleaned})"
