"""Header parsing: RFC 2047 words, RFC 2231 parameters, addresses, JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from garrison.message import MessageAnalysis, analyse
from garrison.message.addresses import Address, parse_address_list
from garrison.message.headers import (
    decode_param,
    decode_rfc2047,
    merge_rfc2231,
    parse_content_type,
    parse_header_block,
)
from garrison.message.imapwire import nstring, string_for_humans

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?ISO-8859-1?Q?a_b?= =?ISO-8859-1?Q?_c?=", "a b c"),
        ("plain =?utf-8?q?X?= text", "plain X text"),
        ("=?utf-8?b?bm90IGJhc2U2NA?=", "not base64"),
        ("=?utf-8*en?q?lang?=", "lang"),
        ("=?utf-8?x?bad?=", "=?utf-8?x?bad?="),
        ("=?utf-8?b?!!!!?=", "=?utf-8?b?!!!!?="),
        ("no words", "no words"),
    ],
)
def test_decode_rfc2047(value: str, decoded: str) -> None:
    assert decode_rfc2047(value) == decoded


def test_rfc2231_continuations_merge() -> None:
    params = [
        ("title*0*", b"us-ascii'en'This%20is%20"),
        ("title*1", b"fun"),
        ("name", b"plain"),
    ]
    assert merge_rfc2231(params) == [
        ("name", b"plain"),
        ("title*", b"us-ascii'en'This%20is%20fun"),
    ]


def test_rfc2231_missing_segment_dropped() -> None:
    params = [("a*0", b"x"), ("a*2", b"z")]
    assert merge_rfc2231(params) == [("a", b"x")]


def test_decode_param_extended_value() -> None:
    content_type = parse_content_type(b"text/plain; name*=gb2312''%D6%D0%CE%C4.txt")
    assert content_type is not None
    assert decode_param(content_type.params, "NAME") == "中文.txt"


def test_decode_param_encoded_word_in_plain_value() -> None:
    content_type = parse_content_type(b'image/png; name="=?utf-8?b?5Zu+LnBuZw==?="')
    assert content_type is not None
    assert decode_param(content_type.params, "name") == "图.png"


def test_content_type_with_comments() -> None:
    content_type = parse_content_type(b'text (comment) / html ; charset = "utf-8"')
    assert content_type is not None
    assert content_type.mime_type == "text/html"
    assert content_type.params == [("charset", b"utf-8")]


def test_header_block_folding_and_junk() -> None:
    fields = parse_header_block(
        b" orphan\r\nSubject: a\r\n b\r\nno colon\r\nX: 1\r\n\r\n"
    )
    assert [field.name for field in fields] == ["Subject", "X"]
    assert fields[0].value == b"a b"
    assert fields[0].raw == b"Subject: a\r\n b\r\n"


def test_address_group_and_route() -> None:
    addresses = parse_address_list(b"Team: a@b.example;, <@r1,@r2:u@d>")
    assert addresses == [
        Address(None, None, b"Team", None),
        Address(None, None, b"a", b"b.example"),
        Address(None, None, None, None),
        Address(None, b"@r1,@r2", b"u", b"d"),
    ]


def test_address_comment_becomes_name() -> None:
    assert parse_address_list(b"a@b (Real Name)") == [
        Address(b"Real Name", None, b"a", b"b")
    ]


def test_address_missing_domain() -> None:
    assert parse_address_list(b"localonly") == [
        Address(None, None, b"localonly", b"MISSING_DOMAIN")
    ]


def test_address_list_capped() -> None:
    value = b", ".join(b"u%d@example.test" % i for i in range(50))
    assert len(parse_address_list(value, max_addresses=10)) == 10


def test_nstring_forms() -> None:
    assert nstring(None) == b"NIL"
    assert nstring(b'a"b') == b'"a\\"b"'
    assert nstring(b'""""""') == b'{6}\r\n""""""'
    assert nstring("é".encode()) == b"{2}\r\n\xc3\xa9"


def test_string_for_humans_collapses_whitespace() -> None:
    assert string_for_humans(b"plain") == b'"plain"'
    assert string_for_humans(b" a\t\tb \r\n c ") == b"{5}\r\na b c"
    assert string_for_humans(b"   ") == b'""'


def test_search_fields() -> None:
    result = analyse((SAMPLES / "plain.eml").read_bytes())
    assert result.subject == "afternoon meeting again\t and  again"
    assert result.from_ == "Fred Foobar <foobar@Blurdybloop.example>"
    assert result.to.startswith("mooch@owatagu.siam.edu.example, Team: a@b.example")
    assert result.message_id == "<B27397-0100000@Blurdybloop.example>"
    assert result.in_reply_to == "<parent@Blurdybloop.example>"
    assert result.references == ["<root@x.example>", "<parent@Blurdybloop.example>"]
    expected_date = datetime(
        1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8))
    )
    assert result.sent_date == expected_date
    assert result.has_attachments is False


def test_attachments_found() -> None:
    result = analyse((SAMPLES / "mixed-attachments.eml").read_bytes())
    assert result.has_attachments is True
    assert result.attachment_names == ["report.pdf", "图片.png"]


def test_invalid_date_is_none() -> None:
    result = analyse(b"Date: not a date\r\n\r\nbody")
    assert result.sent_date is None


def test_date_without_zone_is_utc() -> None:
    result = analyse(b"Date: Mon, 7 Feb 1994 21:52:25 -0000\r\n\r\nbody")
    assert result.sent_date == datetime(1994, 2, 7, 21, 52, 25, tzinfo=UTC)


def test_json_round_trip() -> None:
    data = (SAMPLES / "gbk-labelled-gb2312.eml").read_bytes()
    original = analyse(data)
    restored = MessageAnalysis.from_json(original.to_json())
    assert restored == original


def test_json_round_trip_with_literal_bytes() -> None:
    original = analyse(
        "Subject: naïve\r\nFrom: a@b\r\nDate: 1 Jan 2020 00:00 +0100\r\n\r\nx".encode()
    )
    assert b"{6}\r\nna\xc3\xafve" in original.envelope
    assert MessageAnalysis.from_json(original.to_json()) == original


def test_from_json_rejects_unknown_field() -> None:
    text = analyse(b"\r\nbody").to_json().replace('"size"', '"bogus"')
    with pytest.raises(ValueError):
        MessageAnalysis.from_json(text)
