"""POP3 command-line parser: bytes in, a typed `Command` out, no I/O.

The grammar is RFC 1939 §3 as extended by RFC 2449 §3: a keyword of three
or four letters, case-insensitive, then arguments separated by spaces, then
CRLF. `parse_command` checks only the shape of the line; the command table
in `garrison.pop3.commands` checks which arguments each command takes.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 2449 §4: a command line is at most 255 octets including CRLF.
MAX_COMMAND_LINE = 255

# SASL responses sent after a `+ ` continuation are not command lines, so the
# 255-octet limit does not apply to them. 12288 octets is the limit RFC 4954
# §4 sets for the same responses in SMTP AUTH; PLAIN needs far less.
MAX_SASL_RESPONSE_LINE = 12288

# Message numbers and line counts are decimal; ten digits cover 2**32.
_MAX_NUMBER_DIGITS = 10


class CommandSyntaxError(ValueError):
    """A command line that does not follow the POP3 grammar.

    `detail` is a short public description, safe to send to the client.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed command line.

    `keyword` is upper-cased. `args` are the space-separated arguments.
    `raw_args` is the text after the first space, exactly as sent, for PASS,
    whose single argument may contain spaces (RFC 1939 §7).
    """

    keyword: str
    args: tuple[str, ...]
    raw_args: str


def strip_line_ending(line: bytes) -> bytes:
    """Remove a trailing CRLF, or a bare LF as many servers accept."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def parse_command(line: bytes) -> Command:
    """Parse one command line, with or without its line ending.

    Raises CommandSyntaxError for a line that is not UTF-8, contains control
    characters, or whose keyword is not three or four ASCII letters.
    """
    text = _decode(strip_line_ending(line))

    keyword, space, raw_args = text.partition(" ")
    # RFC 2449 §3: keywords are three or four printable ASCII characters;
    # every POP3 keyword in use is made of letters.
    if not (3 <= len(keyword) <= 4 and keyword.isascii() and keyword.isalpha()):
        raise CommandSyntaxError("a command starts with a 3 or 4 letter keyword")

    args = tuple(part for part in raw_args.split(" ") if part)
    return Command(keyword=keyword.upper(), args=args, raw_args=raw_args)


def parse_message_number(text: str) -> int:
    """Parse a message number argument (RFC 1939 §5: decimal, from 1).

    Raises CommandSyntaxError unless `text` is a positive decimal number
    of at most ten digits. Whether the message exists is the maildrop's
    question.
    """
    number = _parse_decimal(text, "message number")
    if number == 0:
        raise CommandSyntaxError("message numbers start at 1")
    return number


def parse_line_count(text: str) -> int:
    """Parse the line-count argument of TOP (RFC 1939 §7: non-negative).

    A count with more digits than any message has lines means the whole
    message, as RFC 1939 §7 says for a count beyond the body's end. Raises
    CommandSyntaxError unless `text` is a decimal number.
    """
    if text.isascii() and text.isdigit() and len(text) > _MAX_NUMBER_DIGITS:
        return 10**_MAX_NUMBER_DIGITS
    return _parse_decimal(text, "line count")


def _parse_decimal(text: str, what: str) -> int:
    # str.isdigit accepts non-ASCII digits such as "²"; POP3 numbers are ASCII.
    if not (text.isascii() and text.isdigit()):
        raise CommandSyntaxError(f"invalid {what} {text[:20]!r}")
    if len(text) > _MAX_NUMBER_DIGITS:
        raise CommandSyntaxError(f"{what} too large")
    return int(text)


def _decode(line: bytes) -> str:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandSyntaxError("command line is not valid UTF-8") from None

    # A NUL or another control character has no place in a command line and
    # would end up in logs and in directory look-ups.
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise CommandSyntaxError("command line contains control characters")
    return text
