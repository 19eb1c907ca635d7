"""Property tests: any input analyses, and the output is valid IMAP.

Inputs are random bytes, the samples with random byte-level mutations,
and random MIME trees from the corpus generator with mutations.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.message import MessageAnalysis, analyse, extract_text, section_bytes
from tests.message.corpus import random_message
from tests.message.wire import assert_valid_body

SAMPLES = [
    path.read_bytes()
    for path in sorted((Path(__file__).parent / "samples").glob("*.eml"))
]
SNIPPETS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"--b1\r\n",
    b"--outer--\r\n",
    b"Content-Type: multipart/mixed; boundary=b1\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"=?utf-8?b?",
    b"?=",
    b'"',
    b"(",
    b")",
    b"<",
    b">",
    b"\x00",
    b"\xff\xfe",
    b"{5}",
    b":",
    b";",
]

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if action == "insert":
            data[position:position] = draw(
                st.sampled_from(SNIPPETS) | st.binary(max_size=8)
            )
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif action == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[position:]
    return bytes(data)


corpus_messages = st.integers(0, 2**32).map(
    lambda seed: random_message(random.Random(seed))
)


def _walk(node: dict, low: int, high: int, path: tuple[int, ...], out: list) -> None:
    stack = [(node, low, high, path)]
    while stack:
        node, low, high, path = stack.pop()
        assert low <= node["hs"] <= node["bs"] <= node["be"] <= high, (node, low, high)
        out.append(path)
        for number, child in enumerate(node.get("sub", []), start=1):
            stack.append((child, node["bs"], node["be"], (*path, number)))
        if "msg" in node:
            message = node["msg"]
            assert message["hs"] == node["bs"]
            stack.append((message, node["bs"], node["be"], path))


def check_analysis(data: bytes) -> None:
    result = analyse(data, max_depth=8, max_parts=50)
    assert_valid_body(result.envelope)
    assert_valid_body(result.bodystructure)
    assert_valid_body(result.body)
    assert result.parts["hs"] == 0
    paths: list[tuple[int, ...]] = []
    _walk(result.parts, 0, len(data), (), paths)
    for path in paths[:20]:
        for kind in (None, "HEADER", "TEXT", "MIME"):
            if kind == "MIME" and not path:
                continue
            section_bytes(data, result.parts, path, kind)
        section_bytes(data, result.parts, path, "HEADER.FIELDS", ["From", "To"])
    assert isinstance(extract_text(data, result.parts, limit=10_000), str)
    assert MessageAnalysis.from_json(result.to_json()) == result


@PROPERTY_SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    check_analysis(data)


@PROPERTY_SETTINGS
@given(mutated(st.sampled_from(SAMPLES)))
def test_mutated_samples(data: bytes) -> None:
    check_analysis(data)


@PROPERTY_SETTINGS
@given(mutated(corpus_messages))
def test_mutated_corpus(data: bytes) -> None:
    check_analysis(data)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(SNIPPETS + [b"x", b"a@b", b"Subject: s"]), max_size=60))
def test_snippet_soup(pieces: list[bytes]) -> None:
    check_analysis(b"".join(pieces))


def test_wire_checker_rejects_bad_syntax() -> None:
    bad_values = [
        b'("a" "b"',
        b'("a\r\n")',
        b'("a\\x")',
        b"({10}\r\nshort)",
        b'("a")("b")',
        b'("\xc3\xa9")',
        b"(FOO)",
    ]
    for value in bad_values:
        try:
            assert_valid_body(value)
        except (AssertionError, ValueError, IndexError):
            continue
        raise AssertionError(f"accepted invalid value {value!r}")
