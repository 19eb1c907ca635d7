"""Sans-I/O parser for SMTP command lines (RFC 5321 §4.1).

Entry points:

- `parse_command_line(line)` splits a raw line into a `Command` (verb and
  argument text).
- `parse_mail_argument(argument)` and `parse_rcpt_argument(argument)` parse
  the `FROM:<path> params` and `TO:<path> params` arguments into a
  `MailArguments` / `RcptArguments`.
- `parse_domain_argument(argument)` parses the EHLO/HELO argument.
- `decode_xtext` / `encode_xtext` convert RFC 3461 §4 xtext.

Functions are named after the ABNF rules of RFC 5321 §4.1.2 that they parse.
Every failure raises `SMTPSyntaxError`, which carries the reply to send; no
other exception escapes these functions for any input. Addresses are
returned as `Mailbox(local_part, domain)` with the local part unquoted, so
`"alice"@example.test` and `alice@example.test` compare equal.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from garrison.smtp import replies
from garrison.smtp.replies import Reply

# RFC 5321 §4.5.3.1.3: a path is at most 256 octets including "<" and ">".
MAX_PATH_OCTETS = 256
# RFC 5321 §4.5.3.1.2: a domain name is at most 255 octets.
MAX_DOMAIN_OCTETS = 255


class SMTPSyntaxError(ValueError):
    """A command line that does not parse; `reply` is the reply to send."""

    def __init__(self, reply: Reply, detail: str = "") -> None:
        super().__init__(detail or reply.text)
        self.reply = reply
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Command:
    """A command line split into its upper-cased verb and its argument text."""

    verb: str
    argument: str


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An address: unquoted local part and domain (or address literal).

    `domain` is empty only for the special recipient `<Postmaster>` that
    RFC 5321 §4.1.1.3 allows without a domain.
    """

    local_part: str
    domain: str

    @property
    def address(self) -> str:
        """The address in its RFC 5321 wire form, quoting the local part if needed."""
        if not self.domain:
            return self.local_part
        return f"{quote_local_part(self.local_part)}@{self.domain}"

    @property
    def is_ascii(self) -> bool:
        """Whether the address needs no SMTPUTF8 (RFC 6531) to be sent."""
        return self.local_part.isascii() and self.domain.isascii()


@dataclass(frozen=True, slots=True)
class MailArguments:
    """The parsed argument of MAIL: `sender` is None for the null path `<>`."""

    sender: Mailbox | None
    parameters: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RcptArguments:
    """The parsed argument of RCPT."""

    recipient: Mailbox
    parameters: dict[str, str | None] = field(default_factory=dict)


# -- character classes (RFC 5321 §4.1.2, RFC 5322 §3.2.3, RFC 6531 §3.3) --

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_UTF8_NON_ASCII = "\u0080-\U0010ffff"
_QTEXT = r"\x20\x21\x23-\x5b\x5d-\x7e"


def _build_path_pattern(utf8: bool) -> re.Pattern[str]:
    extra = _UTF8_NON_ASCII if utf8 else ""
    atom = f"[{_ATEXT}{extra}]+"
    dot_string = rf"{atom}(?:\.{atom})*"
    quoted_string = rf'"(?:[{_QTEXT}{extra}]|\\[\x20-\x7e])*"'
    let_dig = f"[A-Za-z0-9{extra}]"
    sub_domain = rf"{let_dig}(?:[A-Za-z0-9\-{extra}]*{let_dig})?"
    domain = rf"{sub_domain}(?:\.{sub_domain})*"
    address_literal = r"\[[\x21-\x5a\x5e-\x7e]+\]"
    at_domain = rf"@(?:{domain})"
    source_route = rf"{at_domain}(?:,{at_domain})*:"
    return re.compile(
        rf"<(?P<route>{source_route})?"
        rf"(?P<local>{dot_string}|{quoted_string})"
        rf"@(?P<domain>{domain}|{address_literal})>"
    )


# One pattern for both modes: callers reject non-ASCII paths afterwards
# unless the transaction uses SMTPUTF8, which gives the precise 553 5.6.7.
_PATH = _build_path_pattern(utf8=True)
_DOMAIN_ARGUMENT = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?)*\.?"
    r"|\[[\x21-\x5a\x5e-\x7e]+\])"
)
_DOT_STRING = re.compile(
    rf"[{_ATEXT}{_UTF8_NON_ASCII}]+(?:\.[{_ATEXT}{_UTF8_NON_ASCII}]+)*"
)
_ESMTP_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
_VERB = re.compile(r"[A-Za-z]{1,16}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LDH_STR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?")

# RFC 3461 §4 and RFC 4954 §5: the values of these parameters are xtext.
XTEXT_PARAMETERS = frozenset({"AUTH", "ENVID", "ORCPT"})


def parse_command_line(line: bytes) -> Command:
    """Split one command line (without its CRLF) into verb and argument.

    RFC 5321 §2.4: verbs are case-insensitive, so the verb is upper-cased.
    Raises SMTPSyntaxError for bytes that are not UTF-8, for control
    characters, and for a line whose verb is not letters.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SMTPSyntaxError(
            replies.SYNTAX_ERROR, "command line is not UTF-8"
        ) from exc

    # RFC 5321 §4.1.2: no argument syntax allows a control character, and
    # TAB is a control character too.
    if _CONTROL.search(text):
        raise SMTPSyntaxError(replies.SYNTAX_ERROR, "control character in command line")

    text = text.rstrip(" ")
    verb, _, argument = text.partition(" ")
    if not _VERB.fullmatch(verb):
        raise SMTPSyntaxError(replies.UNKNOWN_COMMAND, "invalid command verb")
    return Command(verb.upper(), argument)


def parse_mail_argument(argument: str) -> MailArguments:
    """Parse `FROM:<reverse-path> [SP mail-parameters]` (RFC 5321 §4.1.1.2).

    A non-ASCII path is accepted only with the SMTPUTF8 parameter
    (RFC 6531 §3.4); otherwise the reply is 553 5.6.7.
    """
    rest = _strip_prefix(argument, "FROM:", replies.SYNTAX_ERROR)
    if rest.startswith("<>"):
        sender = None
        rest = rest[2:]
    else:
        sender, rest = parse_path(rest, replies.SENDER_SYNTAX)

    parameters = parse_esmtp_parameters(rest)
    if sender is not None and not sender.is_ascii and "SMTPUTF8" not in parameters:
        raise SMTPSyntaxError(replies.NEEDS_SMTPUTF8)
    return MailArguments(sender, parameters)


def parse_rcpt_argument(argument: str, utf8: bool = False) -> RcptArguments:
    """Parse `TO:<forward-path> [SP rcpt-parameters]` (RFC 5321 §4.1.1.3).

    `utf8` is True when the transaction's MAIL carried SMTPUTF8. Without
    it a non-ASCII path is rejected with 553 5.6.7.
    """
    rest = _strip_prefix(argument, "TO:", replies.SYNTAX_ERROR)

    # RFC 5321 §4.1.1.3: "<Postmaster>" without a domain must be accepted.
    if rest[:12].lower() == "<postmaster>":
        recipient = Mailbox("Postmaster", "")
        rest = rest[12:]
    else:
        recipient, rest = parse_path(rest, replies.RECIPIENT_SYNTAX)

    if not utf8 and not recipient.is_ascii:
        raise SMTPSyntaxError(replies.NEEDS_SMTPUTF8)
    return RcptArguments(recipient, parse_esmtp_parameters(rest))


def parse_path(text: str, error: Reply) -> tuple[Mailbox, str]:
    """Parse a `Path` at the start of `text`; return it and the remaining text.

    A source route (`<@a,@b:user@c>`) is accepted and dropped, as RFC 5321
    §4.1.1.3 and Appendix C tell servers to do. `error` is the reply
    for a malformed path (5.1.7 for senders, 5.1.3 for recipients).
    """
    match = _PATH.match(text)
    if match is None:
        raise SMTPSyntaxError(error, "malformed path")

    raw_local = match.group("local")
    domain = match.group("domain")
    path_length = len(match.group(0).encode("utf-8")) - len(
        (match.group("route") or "").encode("utf-8")
    )
    # RFC 5321 §4.5.3.1.3 and §4.5.3.1.2: path and domain length limits.
    if path_length > MAX_PATH_OCTETS:
        raise SMTPSyntaxError(error, "path longer than 256 octets")
    if len(domain.encode("utf-8")) > MAX_DOMAIN_OCTETS:
        raise SMTPSyntaxError(error, "domain longer than 255 octets")
    if domain.startswith("["):
        parse_address_literal(domain, error)

    local_part = _unquote(raw_local) if raw_local.startswith('"') else raw_local
    return Mailbox(local_part, domain), text[match.end() :]


def parse_address_literal(literal: str, error: Reply = replies.SYNTAX_ERROR) -> str:
    """Validate an RFC 5321 §4.1.3 address literal such as `[192.0.2.1]`.

    Accepts IPv4, `IPv6:` and general (`tag:content`) literals and returns
    the literal unchanged; raises SMTPSyntaxError otherwise.
    """
    content = literal[1:-1]
    if content[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(content[5:])
        except ValueError as exc:
            raise SMTPSyntaxError(error, "invalid IPv6 address literal") from exc
        return literal

    tag, colon, value = content.partition(":")
    if colon:
        # General-address-literal = Standardized-tag ":" 1*dcontent
        if not _LDH_STR.fullmatch(tag) or not value:
            raise SMTPSyntaxError(error, "invalid general address literal")
        return literal

    try:
        ipaddress.IPv4Address(content)
    except ValueError as exc:
        raise SMTPSyntaxError(error, "invalid IPv4 address literal") from exc
    return literal


def parse_domain_argument(argument: str) -> str:
    """Parse the EHLO/HELO argument: a domain or an address literal.

    RFC 5321 §4.1.1.1 requires the client's domain. A server must not
    reject the session because the name does not match the address, so
    only the syntax is checked. Underscores are tolerated because many
    hosts use them.
    """
    domain = argument.strip(" ")
    if not domain or len(domain) > MAX_DOMAIN_OCTETS:
        raise SMTPSyntaxError(replies.SYNTAX_ERROR, "missing or overlong domain")
    if not _DOMAIN_ARGUMENT.fullmatch(domain):
        raise SMTPSyntaxError(replies.SYNTAX_ERROR, "invalid domain")
    if domain.startswith("["):
        parse_address_literal(domain)
    return domain


def parse_esmtp_parameters(text: str) -> dict[str, str | None]:
    """Parse `*(SP esmtp-param)` after a path (RFC 5321 §4.1.2).

    Keywords are upper-cased. Values of xtext parameters (AUTH, ENVID,
    ORCPT) are decoded. A repeated keyword is a syntax error.
    """
    parameters: dict[str, str | None] = {}
    if not text:
        return parameters
    if not text.startswith(" "):
        raise SMTPSyntaxError(replies.SYNTAX_ERROR, "text after path")

    for item in text[1:].split(" "):
        if not item:
            continue
        keyword, equals, value = item.partition("=")
        if not _ESMTP_KEYWORD.fullmatch(keyword):
            raise SMTPSyntaxError(replies.PARAMETER_SYNTAX, "invalid parameter keyword")
        keyword = keyword.upper()
        if keyword in parameters:
            raise SMTPSyntaxError(
                replies.PARAMETER_SYNTAX, f"repeated parameter {keyword}"
            )
        if not equals:
            parameters[keyword] = None
            continue
        # esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under RFC 6531 §3.3
        if not value or "=" in value:
            raise SMTPSyntaxError(
                replies.PARAMETER_SYNTAX, f"invalid value for {keyword}"
            )
        if keyword in XTEXT_PARAMETERS:
            value = decode_xtext(value)
        parameters[keyword] = value
    return parameters


def decode_xtext(text: str) -> str:
    """Decode RFC 3461 §4 xtext: `+XX` is the octet with upper-case hex XX.

    Raises SMTPSyntaxError for a malformed `+` escape or a character outside
    `!`..`~`.
    """
    if "+" not in text:
        if not all("!" <= ch <= "~" for ch in text):
            raise SMTPSyntaxError(replies.PARAMETER_SYNTAX, "invalid xtext")
        return text

    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "+":
            hex_digits = text[i + 1 : i + 3]
            if len(hex_digits) != 2 or any(
                d not in "0123456789ABCDEF" for d in hex_digits
            ):
                raise SMTPSyntaxError(replies.PARAMETER_SYNTAX, "invalid xtext escape")
            out.append(int(hex_digits, 16))
            i += 3
            continue
        if not "!" <= ch <= "~":
            raise SMTPSyntaxError(replies.PARAMETER_SYNTAX, "invalid xtext")
        out.append(ord(ch))
        i += 1
    return out.decode("utf-8", errors="replace")


def encode_xtext(text: str) -> str:
    """Encode text as RFC 3461 §4 xtext (the inverse of `decode_xtext`)."""
    out = []
    for byte in text.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def quote_local_part(local_part: str) -> str:
    """Return the local part as a Dot-string if it is one, else as a Quoted-string."""
    if _DOT_STRING.fullmatch(local_part):
        return local_part
    escaped = local_part.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _unquote(quoted: str) -> str:
    # RFC 5321 §4.1.2: quoted-pairSMTP is a backslash and one printable octet.
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def _strip_prefix(argument: str, prefix: str, error: Reply) -> str:
    if argument[: len(prefix)].upper() != prefix:
        raise SMTPSyntaxError(error, f"expected {prefix}")
    # Many clients write "MAIL FROM: <a@b>"; RFC 5321 has no space there,
    # but Postfix and Exim accept one, so the space is skipped.
    return argument[len(prefix) :].lstrip(" ")
