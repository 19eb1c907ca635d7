"""SASL PLAIN decoding for AUTH."""

from __future__ import annotations

import base64

import pytest

from garrison.pop3 import replies
from garrison.pop3.errors import POP3Error
from garrison.pop3.sasl import decode_base64, parse_plain


def test_decode_base64_round_trip() -> None:
    data = b"\0alice@example.test\0secret"
    assert decode_base64(base64.b64encode(data).decode()) == data


@pytest.mark.parametrize(
    "text",
    ["AG FsaWNl", "=AAA", "AAA=BBB", "AGFsaWNl!", "A", "\u00e4AAA"],
    ids=[
        "space inside",
        "leading padding",
        "padding in the middle",
        "character outside the alphabet",
        "truncated",
        "non-ASCII",
    ],
)
def test_decode_base64_rejects(text: str) -> None:
    with pytest.raises(POP3Error) as raised:
        decode_base64(text)
    assert raised.value.reply == replies.AUTH_INVALID_BASE64


def test_parse_plain_without_authzid() -> None:
    assert parse_plain(b"\0alice@example.test\0pass word") == (
        "alice@example.test",
        "pass word",
    )


def test_parse_plain_with_matching_authzid() -> None:
    message = b"alice@example.test\0alice@example.test\0secret"
    assert parse_plain(message) == ("alice@example.test", "secret")


def test_parse_plain_rejects_other_authzid() -> None:
    with pytest.raises(POP3Error) as raised:
        parse_plain(b"bob@example.test\0alice@example.test\0secret")
    assert raised.value.reply == replies.AUTH_AUTHZID_MISMATCH


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice\0secret",
        b"\0\0secret",
        b"\0alice\0",
        b"\0alice\0secret\0more",
        b"\0al\xffice\0secret",
        b"\0" + b"a" * 256 + b"\0secret",
    ],
    ids=[
        "empty",
        "two fields",
        "empty user name",
        "empty password",
        "four fields",
        "invalid UTF-8",
        "user name over 255 octets",
    ],
)
def test_parse_plain_rejects_malformed(message: bytes) -> None:
    with pytest.raises(POP3Error) as raised:
        parse_plain(message)
    assert raised.value.reply == replies.AUTH_MALFORMED
