"""Random but well-formed-ish MIME messages for differential tests.

`random_message(rng)` builds a message from a seeded `random.Random`: nested
multiparts (including digests), message/rfc822 parts, missing or broken
blank lines, transport padding after boundaries, missing close delimiters,
preambles and epilogues, odd Subject and address shapes. Line ends are CRLF,
because Dovecot reports sizes with CRLF line ends.
"""

from __future__ import annotations

import random

_LEAF_TYPES = [
    "text/plain",
    "text/html",
    "application/octet-stream",
    "image/png",
    "TEXT/Plain",
]
_NESTED_TYPES = [
    "multipart/mixed",
    "multipart/alternative",
    "message/rfc822",
    "multipart/digest",
]
_FROM = [
    "a@b.example",
    '"A B" <a@b.example>',
    "x",
    "<@r1,@r2:u@d>",
    "G: a@b, c@d;",
    "a@b (Comment)",
    "=?utf-8?q?X?= <q@w>",
    "broken <a@",
    "",
]
_SUBJECTS = [
    "hi",
    " lead",
    "two  spaces",
    "tab\there",
    'q"uote',
    "back\\slash",
    "fold\n more",
    "",
]


def _headers(rng: random.Random, kind: str, boundary: str) -> list[str]:
    lines = []
    params = ""
    if rng.random() < 0.5:
        params += "; charset=" + rng.choice(["utf-8", '"iso-8859-1"', "US-ASCII"])
    if rng.random() < 0.2:
        params += f'; name="f{rng.randint(0, 9)}.bin"'
    if kind.startswith("multipart"):
        params += f'; boundary="{boundary}"'
    lines.append(f"Content-Type: {kind}{params}")

    if rng.random() < 0.3:
        encoding = rng.choice(["7bit", "base64", "Quoted-Printable", "8bit"])
        lines.append(f"Content-Transfer-Encoding: {encoding}")
    if rng.random() < 0.2:
        disposition = rng.choice(
            [
                "inline",
                "attachment; filename=x.txt",
                "attachment; filename*=utf-8''%E4.txt",
            ]
        )
        lines.append(f"Content-Disposition: {disposition}")

    if rng.random() < 0.1:
        lines.append(f"Content-ID: <id{rng.randint(0, 9)}@x>")
    if rng.random() < 0.1:
        lines.append('Content-Description: some "desc"')
    if rng.random() < 0.1:
        lines.append("Content-Language: en-US, fr")
    if rng.random() < 0.1:
        lines.append("Content-Location: foo.html")
    return lines


def _entity(rng: random.Random, depth: int) -> str:
    kinds = list(_LEAF_TYPES)
    if depth < 3:
        kinds += _NESTED_TYPES
    kind = rng.choice(kinds)
    boundary = f"b{depth}_{rng.randint(0, 99999)}"
    if rng.random() < 0.9:
        header = _headers(rng, kind, boundary)
    else:
        kind, header = "text/plain", []

    if kind.startswith("multipart"):
        body = "preamble\n" if rng.random() < 0.3 else ""
        for _ in range(rng.randint(0, 3)):
            body += f"--{boundary}{rng.choice(['', '', '  ', chr(9)])}\n"
            body += _entity(rng, depth + 1)
            body += "\n" if rng.random() < 0.8 else ""
        if rng.random() < 0.8:
            body += f"--{boundary}--\n"
        if rng.random() < 0.3:
            body += "epilogue\n"
        return "\n".join(header) + "\n\n" + body
    if kind == "message/rfc822":
        inner = f"From: x{depth}@example.test\nSubject: inner {rng.randint(0, 9)}\n"
        return "\n".join(header) + "\n\n" + inner + _entity(rng, depth + 1)
    body = "".join(
        f"line {i} {'x' * rng.randint(0, 20)}\n" for i in range(rng.randint(0, 4))
    )
    if rng.random() < 0.3:
        body = body.rstrip("\n")
    separator = "\n\n" if rng.random() < 0.95 else "\n"
    return "\n".join(header) + separator + body


def random_message(rng: random.Random) -> bytes:
    """Return one random message with CRLF line ends."""
    header = [f"From: {rng.choice(_FROM)}", f"Subject: {rng.choice(_SUBJECTS)}"]
    if rng.random() < 0.5:
        header.append("To: a@b, c@d")
    if rng.random() < 0.3:
        header.append("Date: Mon, 7 Feb 1994 21:52:25 -0800")
    if rng.random() < 0.3:
        header.append("Message-ID: <m@x>")
    if rng.random() < 0.2:
        header.append("In-Reply-To: <p@x> (comment)")
    if rng.random() < 0.7:
        header.append("MIME-Version: 1.0")
    text = "\n".join(header) + "\n" + _entity(rng, 0)
    return text.replace("\n", "\r\n").encode()
