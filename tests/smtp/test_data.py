"""Tests for the DATA decoder, the BDAT line checker and dot-stuffing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.smtp.data import ContentError, DataDecoder, LineChecker, dot_stuff

MAX_LINE = 1000
MAX_SIZE = 1 << 20


def decode_in_chunks(
    stream: bytes, sizes: list[int], max_line: int = MAX_LINE, max_size: int = MAX_SIZE
) -> tuple[DataDecoder, bytes]:
    decoder = DataDecoder(max_line, max_size)
    out = []
    position = 0
    for size in sizes + [len(stream)]:
        chunk = stream[position : position + max(size, 1)]
        position += len(chunk)
        out.append(decoder.feed(chunk))
        if position >= len(stream):
            break
    return decoder, b"".join(out)


def reference_decode(
    stream: bytes, max_line: int = MAX_LINE, max_size: int = MAX_SIZE
) -> tuple[bool, bytes, bytes, bool]:
    """Line-by-line model: (done, content, trailing, has_error)."""
    framed = b"\r\n" + stream
    end = framed.find(b"\r\n.\r\n")
    if end < 0:
        return False, b"", b"", False
    raw = framed[2 : end + 2]
    trailing = framed[end + 5 :]
    lines = raw.split(b"\r\n")[:-1] if raw else []
    bare = any(b"\r" in line or b"\n" in line for line in lines)
    too_long = any(len(line) + 2 > max_line for line in lines)
    content = b"".join(
        (line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines
    )
    too_big = len(content) > max_size
    return True, content, trailing, bare or too_long or too_big


def test_data_simple_message() -> None:
    decoder, content = decode_in_chunks(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", [])
    assert decoder.done
    assert decoder.error is None
    assert content == b"Subject: x\r\n\r\nbody\r\n"
    assert decoder.trailing == b"QUIT\r\n"


def test_data_empty_message() -> None:
    decoder, content = decode_in_chunks(b".\r\n", [])
    assert decoder.done
    assert content == b""


def test_data_dot_unstuffing() -> None:
    decoder, content = decode_in_chunks(b"..\r\n..x\r\n.y\r\na.b\r\n.\r\n", [1, 1, 1])
    assert decoder.error is None
    assert content == b".\r\n.x\r\ny\r\na.b\r\n"


def test_data_end_split_across_every_boundary() -> None:
    stream = b"line one\r\nline two\r\n.\r\nNOOP\r\n"
    for cut in range(1, len(stream)):
        decoder = DataDecoder(MAX_LINE, MAX_SIZE)
        content = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert decoder.done, cut
        assert content == b"line one\r\nline two\r\n", cut
        assert decoder.trailing == b"NOOP\r\n", cut


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r", b"\r\n.\r"],
    ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF", "CR.CRLF", "LF.CR", "CRLF.CR"],
)
def test_data_smuggling_variants_do_not_end_data(smuggled: bytes) -> None:
    stream = b"a: b\r\n\r\nx" + smuggled + b"MAIL FROM:<evil@example.test>\r\n.\r\n"
    decoder, content = decode_in_chunks(stream, [])
    assert decoder.done
    assert decoder.trailing == b""
    assert decoder.error is ContentError.BARE_LINE_ENDING
    assert content == b""


def test_data_line_length_limit_inclusive() -> None:
    ok_line = b"x" * (MAX_LINE - 2) + b"\r\n"
    decoder, content = decode_in_chunks(ok_line + b".\r\n", [7])
    assert decoder.error is None
    assert content == ok_line

    long_line = b"x" * (MAX_LINE - 1) + b"\r\n"
    decoder, _ = decode_in_chunks(long_line + b".\r\n", [7])
    assert decoder.error is ContentError.LINE_TOO_LONG


def test_data_overlong_line_without_crlf_is_bounded() -> None:
    decoder = DataDecoder(MAX_LINE, MAX_SIZE)
    for _ in range(100):
        assert decoder.feed(b"y" * 10_000) == b""
    assert len(decoder._pending) <= MAX_LINE
    decoder.feed(b"\r\n.\r\n")
    assert decoder.done
    assert decoder.error is ContentError.LINE_TOO_LONG


def test_data_size_limit() -> None:
    decoder, content = decode_in_chunks(
        b"x" * 98 + b"\r\n" + b".\r\n", [], max_size=100
    )
    assert decoder.error is None
    assert len(content) == 100
    decoder, _ = decode_in_chunks(b"x" * 99 + b"\r\n" + b".\r\n", [], max_size=100)
    assert decoder.error is ContentError.TOO_BIG


def test_data_after_error_returns_nothing() -> None:
    decoder = DataDecoder(MAX_LINE, MAX_SIZE)
    assert decoder.feed(b"bad\nline\r\n") == b""
    assert decoder.feed(b"good line\r\n") == b""
    decoder.feed(b".\r\n")
    assert decoder.done


stream_bytes = st.lists(
    st.sampled_from(
        [b"\r\n", b"\r", b"\n", b".", b"..", b"a", b"xyz", b"\r\n.\r\n", b" "]
    ),
    max_size=60,
).map(b"".join)


@given(stream_bytes, st.lists(st.integers(1, 12), max_size=20), st.integers(3, 12))
@settings(max_examples=2000)
def test_data_decoder_matches_line_model(
    stream: bytes, sizes: list[int], max_line: int
) -> None:
    decoder, content = decode_in_chunks(stream, sizes, max_line=max_line, max_size=40)
    done, expected, trailing, has_error = reference_decode(stream, max_line, 40)
    assert decoder.done == done
    if not done:
        return
    assert decoder.trailing == trailing
    assert (decoder.error is not None) == has_error
    if not has_error:
        assert content == expected
        assert decoder.size == len(expected)


@given(
    st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"\r\n"))
)
def test_dot_stuff_round_trips(content: bytes) -> None:
    decoder = DataDecoder(10_000, MAX_SIZE)
    decoded = decoder.feed(dot_stuff(content))
    assert decoder.done
    assert decoder.error is None
    expected = (
        content if not content or content.endswith(b"\r\n") else content + b"\r\n"
    )
    assert decoded == expected


def check_lines(
    chunks: list[bytes], max_line: int = MAX_LINE, max_size: int = MAX_SIZE
) -> LineChecker:
    checker = LineChecker(max_line, max_size)
    for chunk in chunks:
        checker.feed(chunk)
    checker.finish()
    return checker


def test_line_checker_accepts_crlf_split_across_chunks() -> None:
    checker = check_lines([b"abc\r", b"\ndef\r\n", b"no final newline"])
    assert checker.error is None
    assert checker.size == 26


@pytest.mark.parametrize(
    "chunks",
    [[b"a\nb"], [b"a\rb"], [b"abc\r", b"x"], [b"abc\r"], [b"\n"]],
    ids=["bare LF", "bare CR", "CR then other chunk", "CR at end", "LF alone"],
)
def test_line_checker_rejects_bare_line_endings(chunks: list[bytes]) -> None:
    assert check_lines(chunks).error is ContentError.BARE_LINE_ENDING


def test_line_checker_line_length_across_chunks() -> None:
    assert check_lines([b"x" * 5, b"x" * 3 + b"\r\n"], max_line=10).error is None
    checker = check_lines([b"x" * 5, b"x" * 4 + b"\r\n"], max_line=10)
    assert checker.error is ContentError.LINE_TOO_LONG


def test_line_checker_size_limit() -> None:
    assert (
        check_lines([b"x" * 60, b"x" * 41], max_size=100).error is ContentError.TOO_BIG
    )


@given(stream_bytes, st.lists(st.integers(1, 12), max_size=20), st.integers(3, 12))
@settings(max_examples=1000)
def test_line_checker_matches_line_model(
    stream: bytes, sizes: list[int], max_line: int
) -> None:
    chunks = []
    position = 0
    for size in sizes:
        chunks.append(stream[position : position + size])
        position += size
    chunks.append(stream[position:])
    checker = check_lines(chunks, max_line=max_line)

    lines = stream.split(b"\r\n")
    bare = any(b"\r" in line or b"\n" in line for line in lines)
    too_long = any(len(line) + 2 > max_line for line in lines)
    assert (checker.error is not None) == (bare or too_long)
