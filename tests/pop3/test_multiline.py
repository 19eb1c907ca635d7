"""Byte-stuffing and TOP cutting over chunked message bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.pop3.multiline import MultilineEncoder, TopCutter


def encode(data: bytes, chunk_size: int = 7) -> bytes:
    encoder = MultilineEncoder()
    out = [
        encoder.encode(data[i : i + chunk_size])
        for i in range(0, len(data), chunk_size)
    ]
    out.append(encoder.finish())
    return b"".join(out)


def cut(data: bytes, body_lines: int, chunk_size: int = 5) -> bytes:
    cutter = TopCutter(body_lines)
    out = []
    for i in range(0, len(data), chunk_size):
        out.append(cutter.cut(data[i : i + chunk_size]))
        if cutter.done:
            break
    return b"".join(out)


def unstuff(reply: bytes) -> bytes:
    """Decode a multi-line reply body as a client does."""
    assert reply.endswith(b"\r\n.\r\n") or reply == b".\r\n"
    lines = reply.split(b"\r\n")
    assert lines[-2:] == [b".", b""]
    body = []
    for line in lines[:-2]:
        assert line != b".", "a lone dot inside the body ends the reply early"
        body.append(line[1:] if line.startswith(b".") else line)
    return b"".join(line + b"\r\n" for line in body)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", b".\r\n"),
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..\r\n", b"a\r\n..b\r\n...\r\n.\r\n"),
        (b"no newline", b"no newline\r\n.\r\n"),
        (b"bare\nlf\n", b"bare\r\nlf\r\n.\r\n"),
        (b"x\n.\n", b"x\r\n..\r\n.\r\n"),
        (b"ends with cr\r", b"ends with cr\r\n.\r\n"),
        (b"a\rb\r\n", b"a\rb\r\n.\r\n"),
    ],
    ids=[
        "empty message",
        "plain lines",
        "lone dot line",
        "dots at line starts",
        "last line without line ending",
        "bare LF becomes CRLF",
        "dot after bare LF",
        "trailing bare CR",
        "bare CR inside a line kept",
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1000])
def test_encoder_output(data: bytes, expected: bytes, chunk_size: int) -> None:
    assert encode(data, chunk_size) == expected


@given(
    lines=st.lists(
        st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        max_size=12,
    ),
    dots=st.lists(st.booleans(), max_size=12),
    chunk_size=st.integers(min_value=1, max_value=20),
)
def test_encoder_round_trips_crlf_messages(
    lines: list[bytes], dots: list[bool], chunk_size: int
) -> None:
    # Lines beyond len(dots) keep their shape.
    dots = dots + [False] * len(lines)
    lines = [
        (b"." + line if dot else line) for line, dot in zip(lines, dots, strict=False)
    ]
    data = b"".join(line + b"\r\n" for line in lines)
    assert unstuff(encode(data, chunk_size)) == data


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=30))
def test_encoder_output_independent_of_chunking(data: bytes, chunk_size: int) -> None:
    assert encode(data, chunk_size) == encode(data, len(data) or 1)


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=30))
def test_encoder_output_is_well_formed(data: bytes, chunk_size: int) -> None:
    reply = encode(data, chunk_size)
    # Every LF ends a CRLF, and the only lone dot is the terminator.
    assert reply.count(b"\n") == reply.count(b"\r\n")
    assert reply.endswith(b".\r\n")
    assert b"\r\n.\r\n" not in reply[:-3]
    assert not reply[:-3].startswith(b".\r\n")


MESSAGE = b"Subject: hi\r\nFrom: a@b\r\n\r\nline 1\r\nline 2\r\nline 3\r\n"


@pytest.mark.parametrize(
    ("body_lines", "expected"),
    [
        (0, b"Subject: hi\r\nFrom: a@b\r\n\r\n"),
        (1, b"Subject: hi\r\nFrom: a@b\r\n\r\nline 1\r\n"),
        (2, b"Subject: hi\r\nFrom: a@b\r\n\r\nline 1\r\nline 2\r\n"),
        (3, MESSAGE),
        (100, MESSAGE),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 1000])
def test_top_cutter(body_lines: int, expected: bytes, chunk_size: int) -> None:
    assert cut(MESSAGE, body_lines, chunk_size) == expected


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_top_cutter_bare_lf_message(chunk_size: int) -> None:
    data = b"Subject: x\n\nbody 1\nbody 2\n"
    assert cut(data, 1, chunk_size) == b"Subject: x\n\nbody 1\n"


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_top_cutter_header_without_body(chunk_size: int) -> None:
    data = b"Subject: x\r\nFrom: y\r\n"
    assert cut(data, 0, chunk_size) == data


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_top_cutter_cr_line_not_blank(chunk_size: int) -> None:
    # "\r\r\n" is a header line holding a CR, not the blank line.
    data = b"A: 1\r\n\r\r\nB: 2\r\n\r\nbody\r\n"
    assert cut(data, 0, chunk_size) == b"A: 1\r\n\r\r\nB: 2\r\n\r\n"


def test_top_cutter_message_starting_with_blank_line() -> None:
    assert cut(b"\r\nbody 1\r\nbody 2\r\n", 1) == b"\r\nbody 1\r\n"
