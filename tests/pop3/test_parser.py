"""Command-line parser: shapes accepted and rejected, and a fuzz test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.pop3.parser import (
    Command,
    CommandSyntaxError,
    parse_command,
    parse_line_count,
    parse_message_number,
    strip_line_ending,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"STAT\r\n", Command("STAT", (), "")),
        (b"stat\r\n", Command("STAT", (), "")),
        (b"Retr 1\r\n", Command("RETR", ("1",), "1")),
        (b"TOP 2 10\r\n", Command("TOP", ("2", "10"), "2 10")),
        (b"TOP  2  10\r\n", Command("TOP", ("2", "10"), " 2  10")),
        (b"PASS with spaces \r\n", Command("PASS", ("with", "spaces"), "with spaces ")),
        (
            b"USER alice@example.test\n",
            Command("USER", ("alice@example.test",), "alice@example.test"),
        ),
        (b"PASS p\xc3\xa4ss\r\n", Command("PASS", ("p\u00e4ss",), "p\u00e4ss")),
        (b"UIDL", Command("UIDL", (), "")),
    ],
    ids=[
        "keyword alone",
        "lower-case keyword is upper-cased",
        "one argument",
        "two arguments",
        "runs of spaces between arguments",
        "raw arguments keep spaces",
        "bare LF ending",
        "UTF-8 argument",
        "no line ending",
    ],
)
def test_parse_command_accepts(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"\r\n",
        b"ST\r\n",
        b"STATS\r\n",
        b"ST4T\r\n",
        b" STAT\r\n",
        b"PASS \xff\xfe\r\n",
        b"PASS a\x00b\r\n",
        b"USER a\tb\r\n",
        b"NOOP\r\r\n",
        b"S\xc3\xa4T\r\n",
    ],
    ids=[
        "empty line",
        "keyword too short",
        "keyword too long",
        "digit in keyword",
        "leading space",
        "invalid UTF-8",
        "NUL in argument",
        "tab in argument",
        "stray carriage return",
        "non-ASCII keyword",
    ],
)
def test_parse_command_rejects(line: bytes) -> None:
    with pytest.raises(CommandSyntaxError):
        parse_command(line)


def test_strip_line_ending() -> None:
    assert strip_line_ending(b"abc\r\n") == b"abc"
    assert strip_line_ending(b"abc\n") == b"abc"
    assert strip_line_ending(b"abc") == b"abc"
    assert strip_line_ending(b"abc\r") == b"abc\r"


@pytest.mark.parametrize("text", ["1", "42", "0042", "4294967295"])
def test_message_number_accepts(text: str) -> None:
    assert parse_message_number(text) == int(text)


@pytest.mark.parametrize(
    "text", ["0", "-1", "+1", "1.0", "", "x", "\u00b2", "\u0661", "12345678901"]
)
def test_message_number_rejects(text: str) -> None:
    with pytest.raises(CommandSyntaxError):
        parse_message_number(text)


def test_line_count_allows_zero() -> None:
    assert parse_line_count("0") == 0
    assert parse_line_count("10") == 10
    with pytest.raises(CommandSyntaxError):
        parse_line_count("-1")


def test_huge_line_count_means_whole_message() -> None:
    assert parse_line_count("99999999999999") >= 10**10
    with pytest.raises(CommandSyntaxError):
        parse_line_count("9" * 30 + "x")


@given(st.binary(max_size=300))
def test_parse_command_raises_only_syntax_error(line: bytes) -> None:
    try:
        command = parse_command(line)
    except CommandSyntaxError as error:
        assert error.detail
        return
    assert command.keyword.isupper()
    assert 3 <= len(command.keyword) <= 4
    assert all(" " not in argument and argument for argument in command.args)
