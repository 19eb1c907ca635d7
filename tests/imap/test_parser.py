"""Parser tests: examples per command, syntax errors and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.imap.command import SpooledLiteral
from garrison.imap.encoder import string
from garrison.imap.parser import (
    Cursor,
    ParseError,
    parse_astring,
    parse_command,
    parse_sequence_set,
)
from garrison.imap.types import STAR, SequenceSet


def parse(line: bytes, *literals: bytes):
    lines = [line]
    # Split the line at each literal announcement, as the reader does.
    if literals:
        lines = line.split(b"\r\n")
    return parse_command(lines, list(literals))


def test_login_quoted_escapes():
    command = parse(b'a1 LOGIN alice "pa\\"ss\\\\word"')
    assert command.tag == "a1"
    assert command.args.username == b"alice"
    assert command.args.password == b'pa"ss\\word'


def test_login_with_literals():
    command = parse(b"a LOGIN {5}\r\n {6}\r\n", b"alice", b"secret")
    assert command.args.username == b"alice"
    assert command.args.password == b"secret"


def test_fetch_header_fields_peek_partial():
    command = parse(b"a FETCH 1:* (UID BODY.PEEK[1.HEADER.FIELDS (From To)]<0.100>)")
    uid_att, body = command.args.atts
    assert uid_att.name == "UID"
    assert body.peek
    assert body.section.path == (1,)
    assert body.section.kind == "HEADER.FIELDS"
    assert body.section.fields == ("FROM", "TO")
    assert body.section.spec == "1.HEADER.FIELDS (From To)"
    assert body.partial == (0, 100)


def test_fetch_macros_expand():
    command = parse(b"a FETCH 1 FULL")
    names = [att.name for att in command.args.atts]
    assert names == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]


def test_uid_forms_set_uid_flag():
    for line in (
        b"a UID FETCH 1 FLAGS",
        b"a UID STORE 1 +FLAGS (\\Seen)",
        b"a UID COPY 1 Trash",
        b"a UID MOVE 1 Trash",
        b"a UID SEARCH ALL",
        b"a UID EXPUNGE 1:5",
    ):
        assert parse(line).uid, line


def test_store_forms():
    command = parse(b"a STORE 2:4 -FLAGS.SILENT \\Seen $Junk")
    assert command.args.operation == "remove"
    assert command.args.silent
    assert command.args.flags == frozenset({"\\Seen", "$Junk"})


def test_system_flags_are_normalised():
    command = parse(b"a STORE 1 FLAGS (\\SEEN \\deleted)")
    assert command.args.flags == frozenset({"\\Seen", "\\Deleted"})


def test_search_program_tree():
    command = parse(b"a SEARCH CHARSET UTF-8 OR FROM bob (SUBJECT hi NOT SEEN) 1:3")
    key = command.args.key
    assert command.args.charset == "UTF-8"
    assert key.op == "AND"
    assert [child.op for child in key.children] == ["OR", "SEQSET"]


def test_append_with_flags_date_and_literal():
    command = parse(
        b'a APPEND Sent (\\Seen) "05-Mar-2024 10:00:00 +0100" {3}\r\n', b"abc"
    )
    assert command.args.mailbox == "Sent"
    assert command.args.flags == frozenset({"\\Seen"})
    assert command.args.internaldate.utcoffset().total_seconds() == 3600
    assert command.args.message == b"abc"


def test_append_keeps_spooled_literal():
    spooled = SpooledLiteral()
    spooled.write(b"x" * 10)
    try:
        command = parse_command([b"a APPEND INBOX {10}", b""], [spooled])
        assert command.args.message is spooled
    finally:
        spooled.close()


def test_mailbox_names_decode_modified_utf7():
    command = parse(b"a SELECT Entw&APw-rfe")
    assert command.args.mailbox == "Entwürfe"
    assert parse(b"a SELECT inbox").args.mailbox == "INBOX"


@pytest.mark.parametrize(
    "line, message",
    [
        (b"a FETCH 0 FLAGS", "non-zero"),
        (b"a FETCH 1:: FLAGS", "number"),
        (b"a FETCH 1, FLAGS", "number"),
        (b"a FETCH 4294967296 FLAGS", "out of range"),
        (b"a FETCH 1 (FLAGS", "space"),
        (b"a FETCH 1 BODY[1.]", "section"),
        (b"a FETCH 1 BODY[MIME]", "MIME"),
        (b"a SEARCH (ALL", "space"),
        (b"a SEARCH ALL)", "space"),
        (b"a SELECT &Jjo", "mailbox name"),
        (b"a STORE 1 FLAGS (\\Recent)", "system flag"),
        (b"a LOGIN  alice pw", "string"),
        (b"a NOOP extra", "extra"),
        (b"a UID NOOP", "UID NOOP"),
        (b"a FROBNICATE", "unknown command"),
        (b'a LOGIN "unterminated', "unterminated"),
    ],
    ids=lambda value: value.decode() if isinstance(value, bytes) else value,
)
def test_syntax_errors_are_tagged(line, message):
    with pytest.raises(ParseError) as info:
        parse(line)
    assert info.value.tag == "a"
    assert message in info.value.message


def test_missing_tag_gives_untagged_error():
    with pytest.raises(ParseError) as info:
        parse(b"")
    assert info.value.tag is None


def test_deep_search_nesting_is_bounded():
    line = b"a SEARCH " + b"(" * 10_000 + b"ALL" + b")" * 10_000
    with pytest.raises(ParseError) as info:
        parse_command([line], [], max_search_depth=32)
    assert "nested deeper" in info.value.message


def test_deep_not_chain_is_bounded():
    line = b"a SEARCH " + b"NOT " * 10_000 + b"ALL"
    with pytest.raises(ParseError):
        parse_command([line], [], max_search_depth=32)


def test_search_depth_at_limit_is_accepted():
    line = b"a SEARCH " + b"(" * 31 + b"ALL" + b")" * 31
    assert parse_command([line], [], max_search_depth=32).args.key.op == "AND"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_parse_error(data):
    try:
        parse_command([data], [])
    except ParseError:
        pass


_TOKENS = st.sampled_from(
    [
        b"a",
        b" ",
        b"UID",
        b"FETCH",
        b"SEARCH",
        b"STORE",
        b"(",
        b")",
        b"[",
        b"]",
        b"1",
        b"*",
        b":",
        b",",
        b"BODY",
        b".PEEK",
        b"HEADER.FIELDS",
        b"<0.5>",
        b'"',
        b"\\",
        b"OR",
        b"NOT",
        b"FLAGS",
        b"+FLAGS",
        b"\\Seen",
        b"APPEND",
        b"{3}",
        b"LOGIN",
        b"SELECT",
        b"&",
        b"-",
        b"CHARSET",
        b"UTF-8",
        b"LIST",
        b"%",
        b"STATUS",
        b"MESSAGES",
        b"ID",
        b"NIL",
        b"AUTHENTICATE",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_TOKENS, max_size=25))
def test_token_soup_raises_only_parse_error(tokens):
    try:
        parse_command([b"".join(tokens)], [])
    except ParseError:
        pass


_RANGES = st.lists(
    st.tuples(
        st.one_of(st.just(STAR), st.integers(1, 2**32 - 1)),
        st.one_of(st.just(STAR), st.integers(1, 2**32 - 1)),
    ),
    min_size=1,
    max_size=8,
)


@given(_RANGES)
def test_sequence_set_round_trip(ranges):
    sequence_set = SequenceSet(tuple(ranges))
    cursor = Cursor.from_bytes(str(sequence_set).encode())
    parsed = parse_sequence_set(cursor)
    cursor.expect_end()
    assert parsed == sequence_set


@given(st.binary(min_size=0, max_size=300).filter(lambda b: b"\x00" not in b))
def test_astring_round_trip_through_encoder(value):
    encoded = string(value)
    if encoded.startswith(b"{"):
        announcement, payload = encoded.split(b"\r\n", 1)
        cursor = Cursor([announcement, b""], [payload])
    else:
        cursor = Cursor.from_bytes(encoded)
    assert parse_astring(cursor) == value
    cursor.expect_end()


@given(st.lists(st.integers(1, 50), min_size=1, max_size=20), st.integers(0, 60))
def test_sequence_set_iteration_matches_contains(numbers, largest):
    sequence_set = SequenceSet(tuple((n, n) for n in numbers))
    expected = sorted({n for n in numbers if n <= largest})
    assert list(sequence_set.iter_sorted(largest, largest)) == expected
    for n in range(1, largest + 1):
        assert sequence_set.contains(n, largest) == (n in expected)
