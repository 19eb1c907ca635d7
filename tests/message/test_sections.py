"""BODY[section] octets (RFC 3501 §6.4.5) on nested multipart and message/rfc822."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.message import analyse, section, section_bytes

SAMPLES = Path(__file__).parent / "samples"
NESTED = (SAMPLES / "nested.eml").read_bytes()
NESTED_PARTS = analyse(NESTED).parts
PLAIN = (SAMPLES / "plain.eml").read_bytes()
PLAIN_PARTS = analyse(PLAIN).parts


def fetch(spec: str, data: bytes = NESTED, parts: dict = NESTED_PARTS) -> bytes:
    return section(data, parts, spec)


def test_whole_message() -> None:
    assert fetch("") == NESTED


def test_top_header_and_text() -> None:
    header = fetch("HEADER")
    assert header.startswith(b"From: Frank")
    assert header.endswith(b'boundary="b1"\r\n\r\n')
    assert header + fetch("TEXT") == NESTED


def test_top_header_fields() -> None:
    assert fetch("HEADER.FIELDS (subject FROM)") == (
        b"From: Frank <frank@example.test>\r\nSubject: nested structure\r\n\r\n"
    )


def test_top_header_fields_not() -> None:
    result = fetch("HEADER.FIELDS.NOT (From To Subject Date Content-Type)")
    assert result == b"MIME-Version: 1.0\r\n\r\n"


def test_header_fields_without_match_is_blank_line() -> None:
    assert fetch("HEADER.FIELDS (X-Absent)") == b"\r\n"


def test_leaf_body_in_deep_multipart() -> None:
    assert fetch("1.1.1") == b"part 1.1.1 plain"
    assert fetch("1.1.2") == b"<p>part 1.1.2 html</p>"


def test_mime_header_of_leaf() -> None:
    assert fetch("1.1.2.MIME") == b"Content-Type: text/html; charset=utf-8\r\n\r\n"


def test_multipart_body_includes_delimiters() -> None:
    """The close-delimiter's line end stays in the body, as Dovecot counts it."""
    body = fetch("1.1")
    assert body.startswith(b"--b3\r\n")
    assert body.endswith(b"--b3--\r\n")


def test_image_part() -> None:
    assert fetch("1.2").startswith(b"R0lGODlhAQAB")
    assert b"Content-ID: <logo@example.test>" in fetch("1.2.MIME")


def test_rfc822_part_body_is_whole_inner_message() -> None:
    inner = fetch("2")
    assert inner.startswith(b"Subject: inner message\r\n")
    assert inner.endswith(b"inner body line 2")


def test_rfc822_header_is_inner_header() -> None:
    assert fetch("2.HEADER") == (
        b"Subject: inner message\r\nFrom: Heidi <heidi@example.test>\r\n"
        b"X-Custom: value\r\n\r\n"
    )


def test_rfc822_text_is_inner_body() -> None:
    assert fetch("2.TEXT") == b"inner body line 1\r\ninner body line 2"


def test_rfc822_mime_is_outer_part_header() -> None:
    assert fetch("2.MIME") == b"Content-Type: message/rfc822\r\n\r\n"


def test_rfc822_header_fields() -> None:
    assert fetch("2.HEADER.FIELDS (x-custom)") == b"X-Custom: value\r\n\r\n"


def test_rfc822_part_one_is_inner_body() -> None:
    assert fetch("2.1") == b"inner body line 1\r\ninner body line 2"


def test_last_part() -> None:
    assert fetch("3") == b"binarydata"


@pytest.mark.parametrize("spec", ["4", "1.3", "1.1.3", "2.2", "3.2", "9.9.9"])
def test_missing_part_is_empty(spec: str) -> None:
    assert fetch(spec) == b""


def test_part_one_of_single_part_message_is_body() -> None:
    assert fetch("1", PLAIN, PLAIN_PARTS) == fetch("TEXT", PLAIN, PLAIN_PARTS)
    assert fetch("1", PLAIN, PLAIN_PARTS).startswith(b"Hello Joe")


def test_mime_of_single_part_is_message_header() -> None:
    assert fetch("1.MIME", PLAIN, PLAIN_PARTS) == fetch("HEADER", PLAIN, PLAIN_PARTS)


def test_header_fields_keep_folding() -> None:
    result = fetch("HEADER.FIELDS (Subject)", PLAIN, PLAIN_PARTS)
    assert result == b"Subject: afternoon meeting\r\n again\t and  again\r\n\r\n"


def test_section_bytes_direct_call() -> None:
    result = section_bytes(NESTED, NESTED_PARTS, (2,), "HEADER.FIELDS", ["From"], True)
    assert result == b"Subject: inner message\r\nX-Custom: value\r\n\r\n"


@pytest.mark.parametrize("spec", ["0", "1.BOGUS", "HEADER.FIELDS From", "1.TEXT extra"])
def test_malformed_spec_raises(spec: str) -> None:
    with pytest.raises(ValueError):
        fetch(spec)


def test_mime_without_part_raises() -> None:
    with pytest.raises(ValueError):
        section_bytes(NESTED, NESTED_PARTS, (), "MIME")


def test_child_body_excludes_crlf_before_delimiter() -> None:
    child = NESTED_PARTS["sub"][2]
    assert NESTED[child["be"] : child["be"] + 6] == b"\r\n--b1"


def test_longest_matching_boundary_wins() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
        b"--ab\r\nContent-Type: multipart/alternative; boundary=abc\r\n\r\n"
        b"--abc\r\n\r\ninner one\r\n--abc\r\n\r\ninner two\r\n--abc--\r\n"
        b"--ab\r\n\r\nouter two\r\n--ab--\r\n"
    )
    parts = analyse(data).parts
    assert section(data, parts, "1.1") == b"inner one"
    assert section(data, parts, "1.2") == b"inner two"
    assert section(data, parts, "2") == b"outer two"
