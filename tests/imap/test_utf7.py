"""Modified UTF-7 (RFC 3501 §5.1.3): examples, strict rejection, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.imap.utf7 import UTF7Error, decode, encode


@pytest.mark.parametrize(
    "name, wire",
    [
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("日本語", "&ZeVnLIqe-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_known_encodings(name, wire):
    assert encode(name) == wire
    assert decode(wire) == name


@pytest.mark.parametrize(
    "wire, reason",
    [
        ("&Jjo", "unterminated"),
        ("&Jjo!-", "invalid base64"),
        ("&AGE-", "printable ASCII"),
        ("&U,BTFw-&ZeVnLIqe-", "adjacent"),
        ("&AAA-", "control"),
        ("&2D0-", "surrogate"),
        ("&AOQ=-", "invalid base64"),
        ("&AOR-", "padding bits"),
        ("&AO-", "code unit"),
        ("caf\xe9", "outside printable"),
        ("tab\there", "outside printable"),
    ],
)
def test_strict_rejection(wire, reason):
    with pytest.raises(UTF7Error) as info:
        decode(wire)
    assert reason in str(info.value)


_NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x7f"),
    max_size=40,
)


@given(_NAMES)
def test_round_trip(name):
    wire = encode(name)
    assert wire.isascii()
    assert decode(wire) == name


@given(st.binary(max_size=60))
def test_decode_raises_only_utf7_error(data):
    try:
        name = decode(data)
    except UTF7Error:
        return
    # Whatever decodes must encode back to the same bytes (one spelling).
    assert encode(name).encode("ascii") == data
