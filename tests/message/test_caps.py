"""Safety caps: huge headers, deep nesting, many parts, large bodies.

Each case must finish quickly and never raise. The time limits are loose
bounds that catch quadratic behaviour on a busy 2-core CI machine; they are
not benchmarks.
"""

from __future__ import annotations

import time
import tracemalloc

from garrison.message import analyse, extract_text, section
from tests.message.wire import assert_valid_body

SECONDS = 10.0


def _timed(data: bytes, seconds: float = SECONDS, **limits: int):
    start = time.perf_counter()
    result = analyse(data, **limits)
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"analysis took {elapsed:.1f} s, limit {seconds} s"
    return result


def test_one_megabyte_header_line() -> None:
    data = b"Subject: " + b"x" * 1_000_000 + b"\r\nFrom: a@b\r\n\r\nbody\r\n"
    result = _timed(data)
    assert result.header_truncated is True
    assert result.header_size == len(data) - len(b"body\r\n")
    assert section(data, result.parts, "TEXT") == b"body\r\n"
    assert len(result.subject) <= 64 * 1024
    assert_valid_body(result.bodystructure)
    assert_valid_body(result.envelope)


def test_one_megabyte_header_without_blank_line() -> None:
    data = b"X-Long: " + b"y" * 1_000_000
    result = _timed(data)
    assert result.header_size == len(data)
    assert result.text_size == 0


def test_header_cap_drops_later_fields() -> None:
    data = b"X-Pad: " + b"p" * 300_000 + b"\r\nSubject: late\r\n\r\nbody"
    result = _timed(data)
    assert result.subject == ""
    assert _timed(data, max_header_bytes=400_000).subject == "late"


def _deep_multipart(levels: int) -> bytes:
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%dx\r\n\r\n--b%dx\r\n" % (i, i)
        for i in range(levels)
    )
    return b"MIME-Version: 1.0\r\n" + head + b"Content-Type: text/plain\r\n\r\nleaf\r\n"


def test_ten_thousand_deep_multipart() -> None:
    data = _deep_multipart(10_000)
    result = _timed(data)
    assert_valid_body(result.bodystructure)
    assert_valid_body(result.body)
    depth = 0
    node = result.parts
    while "sub" in node:
        node = node["sub"][0]
        depth += 1
    assert depth == 32
    assert node["ct"] == "application/octet-stream"
    assert b'"application" "octet-stream"' in result.bodystructure
    assert section(data, result.parts, "1" + ".1" * 31).startswith(b"--b32x\r\n")
    assert section(data, result.parts, "1" + ".1" * 31).endswith(b"leaf\r\n")
    assert "MIME-Version: 1.0" in extract_text(data, result.parts)


def test_ten_thousand_deep_rfc822() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\n" * 10_000 + b"Subject: deep\r\n\r\nx"
    result = _timed(data)
    assert_valid_body(result.bodystructure)
    assert result.bodystructure.count(b'"message" "rfc822"') == 32


def test_hundred_thousand_parts_capped() -> None:
    parts = b"".join(
        b"--sep\r\nContent-Type: text/plain\r\n\r\np%d\r\n" % i for i in range(100_000)
    )
    data = (
        b"Content-Type: multipart/mixed; boundary=sep\r\n\r\n" + parts + b"--sep--\r\n"
    )
    result = _timed(data)
    children = result.parts["sub"]
    assert len(children) == 999
    # Delimiters past the cap stay in the body of the last part.
    last = children[-1]
    last_body = data[last["bs"] : last["be"]]
    assert last_body.startswith(b"p998\r\n--sep\r\n")
    assert last_body.endswith(b"p99999")
    assert_valid_body(result.bodystructure)


def test_hundred_thousand_parts_with_raised_cap() -> None:
    parts = b"".join(b"--sep\r\n\r\np%d\r\n" % i for i in range(100_000))
    data = (
        b"Content-Type: multipart/mixed; boundary=sep\r\n\r\n" + parts + b"--sep--\r\n"
    )
    result = _timed(data, seconds=30.0, max_parts=200_000)
    assert len(result.parts["sub"]) == 100_000
    assert section(data, result.parts, "100000") == b"p99999"


def test_many_dash_lines_are_linear() -> None:
    body = b"--notaboundary\r\n" * 300_000
    data = b"Content-Type: multipart/mixed; boundary=notaboundaryX\r\n\r\n" + body
    result = _timed(data)
    assert result.parts["sub"] == []


def test_large_message_memory_is_bounded() -> None:
    body = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n" * 800_000  # about 30 MB
    data = (
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + body
        + b"--q--\r\n"
    )
    tracemalloc.start()
    try:
        result = analyse(data)
        text = extract_text(data, result.parts, limit=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(text) <= 100_000
    assert "ABCDEFGH" in text
    assert peak < len(data) // 2, f"peak {peak} bytes for a {len(data)} byte message"
