"""Tests for the SMTP command and path parser, with hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.smtp import replies
from garrison.smtp.parser import (
    Mailbox,
    SMTPSyntaxError,
    decode_xtext,
    encode_xtext,
    parse_command_line,
    parse_domain_argument,
    parse_mail_argument,
    parse_rcpt_argument,
    quote_local_part,
)


def test_command_line_verb_is_uppercased() -> None:
    command = parse_command_line(b"mail FROM:<a@b.example>")
    assert command.verb == "MAIL"
    assert command.argument == "FROM:<a@b.example>"


def test_command_line_trailing_spaces_ignored() -> None:
    assert parse_command_line(b"RSET  ").argument == ""


@pytest.mark.parametrize(
    "line",
    [b"MAIL\x00FROM:<a@b>", b"NOOP\rx", b"HELO \xff\xfe", b"12AB", b"", b" MAIL"],
    ids=[
        "nul byte",
        "bare cr",
        "invalid utf8",
        "digits in verb",
        "empty",
        "leading space",
    ],
)
def test_command_line_rejects_malformed(line: bytes) -> None:
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_command_line(line)
    assert caught.value.reply.code in (500, 501)


def test_mail_plain_path() -> None:
    parsed = parse_mail_argument("FROM:<alice@example.test>")
    assert parsed.sender == Mailbox("alice", "example.test")
    assert parsed.parameters == {}


def test_mail_null_reverse_path() -> None:
    assert parse_mail_argument("FROM:<>").sender is None


def test_mail_space_after_colon_accepted() -> None:
    assert parse_mail_argument("FROM: <a@example.test>").sender == Mailbox(
        "a", "example.test"
    )


def test_mail_parameters_parsed_and_uppercased() -> None:
    parsed = parse_mail_argument(
        "FROM:<a@example.test> size=1000 BODY=8BITMIME SMTPUTF8"
    )
    assert parsed.parameters == {"SIZE": "1000", "BODY": "8BITMIME", "SMTPUTF8": None}


def test_mail_xtext_parameter_decoded() -> None:
    parsed = parse_mail_argument("FROM:<a@example.test> ENVID=QQ+2Bx+3D1")
    assert parsed.parameters["ENVID"] == "QQ+x=1"


def test_mail_repeated_parameter_rejected() -> None:
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_mail_argument("FROM:<a@example.test> SIZE=1 SIZE=2")
    assert caught.value.reply == replies.PARAMETER_SYNTAX


def test_mail_quoted_local_part_unquoted() -> None:
    parsed = parse_mail_argument('FROM:<"john \\"q\\" doe"@example.test>')
    assert parsed.sender == Mailbox('john "q" doe', "example.test")
    assert parsed.sender.address == '"john \\"q\\" doe"@example.test'


def test_rcpt_quoted_plain_local_part_equals_dot_string() -> None:
    quoted = parse_rcpt_argument('TO:<"alice"@example.test>').recipient
    assert quoted == parse_rcpt_argument("TO:<alice@example.test>").recipient


def test_rcpt_source_route_dropped() -> None:
    parsed = parse_rcpt_argument("TO:<@relay.example,@b.example:bob@example.test>")
    assert parsed.recipient == Mailbox("bob", "example.test")


def test_rcpt_bare_postmaster_accepted() -> None:
    parsed = parse_rcpt_argument("TO:<postmaster>")
    assert parsed.recipient.local_part == "Postmaster"
    assert parsed.recipient.domain == ""


@pytest.mark.parametrize(
    "literal",
    ["[192.0.2.1]", "[IPv6:2001:db8::1]", "[IPv6:::1]", "[x-tag:whatever]"],
)
def test_rcpt_address_literals(literal: str) -> None:
    assert parse_rcpt_argument(f"TO:<u@{literal}>").recipient.domain == literal


@pytest.mark.parametrize(
    "argument",
    [
        "TO:<u@[300.1.1.1]>",
        "TO:<u@[IPv6:zz::1]>",
        "TO:<u@-bad.example>",
        "TO:<u@bad-.example>",
        "TO:<u..v@example.test>",
        "TO:<.u@example.test>",
        "TO:<u@example.test",
        "TO:u@example.test",
        "TO:<@example.test>",
        "TO:<u@>",
        "TO:<u@example.test>x",
        "TO:<u@exa mple.test>",
    ],
)
def test_rcpt_malformed_path_rejected(argument: str) -> None:
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_rcpt_argument(argument)
    assert caught.value.reply.code == 501


def test_mail_malformed_path_uses_sender_code() -> None:
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_mail_argument("FROM:<not an address>")
    assert caught.value.reply == replies.SENDER_SYNTAX


def test_path_over_256_octets_rejected() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 60] * 4)
    with pytest.raises(SMTPSyntaxError):
        parse_rcpt_argument(f"TO:<{local}@{domain}>")


def test_utf8_sender_needs_smtputf8_parameter() -> None:
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_mail_argument("FROM:<jörg@example.test>")
    assert caught.value.reply == replies.NEEDS_SMTPUTF8
    parsed = parse_mail_argument("FROM:<jörg@bücher.example> SMTPUTF8")
    assert parsed.sender == Mailbox("jörg", "bücher.example")


def test_utf8_recipient_needs_utf8_transaction() -> None:
    with pytest.raises(SMTPSyntaxError) as caught:
        parse_rcpt_argument("TO:<用户@例子.测试>")
    assert caught.value.reply == replies.NEEDS_SMTPUTF8
    parsed = parse_rcpt_argument("TO:<用户@例子.测试>", utf8=True)
    assert parsed.recipient == Mailbox("用户", "例子.测试")


@pytest.mark.parametrize(
    "domain", ["mx.example.org", "[127.0.0.1]", "my_host", "host."]
)
def test_domain_argument_accepted(domain: str) -> None:
    assert parse_domain_argument(domain) == domain


@pytest.mark.parametrize("domain", ["", "a b", "evil(", "[1.2.3]", "-x"])
def test_domain_argument_rejected(domain: str) -> None:
    with pytest.raises(SMTPSyntaxError):
        parse_domain_argument(domain)


def test_xtext_rejects_lowercase_hex() -> None:
    with pytest.raises(SMTPSyntaxError):
        decode_xtext("a+2b")


# -- properties --------------------------------------------------------------

ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
atoms = st.text(alphabet=ATEXT, min_size=1, max_size=10)
dot_strings = st.lists(atoms, min_size=1, max_size=4).map(".".join)
quoted_contents = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20
)
labels = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)
mailboxes = st.builds(Mailbox, st.one_of(dot_strings, quoted_contents), domains)


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_command_line_raises_only_syntax_error(line: bytes) -> None:
    try:
        parse_command_line(line)
    except SMTPSyntaxError as exc:
        assert exc.reply.code in (500, 501)


@given(st.text(max_size=300), st.booleans())
@settings(max_examples=1000)
def test_paths_raise_only_syntax_error(argument: str, utf8: bool) -> None:
    for parse in (
        lambda: parse_mail_argument("FROM:" + argument),
        lambda: parse_rcpt_argument("TO:" + argument, utf8=utf8),
        lambda: parse_domain_argument(argument),
    ):
        try:
            parse()
        except SMTPSyntaxError as exc:
            assert 500 <= exc.reply.code < 600


@given(
    st.text(alphabet='<>@[]:.,"\\ =+aZ09-é', max_size=80),
)
@settings(max_examples=1000)
def test_path_punctuation_raises_only_syntax_error(argument: str) -> None:
    try:
        parse_rcpt_argument("TO:" + argument, utf8=True)
    except SMTPSyntaxError as exc:
        assert exc.reply.code in (501, 553, 555)


@given(mailboxes)
def test_valid_path_round_trips(mailbox: Mailbox) -> None:
    line = f"TO:<{mailbox.address}>"
    if len(line) - 3 > 256:
        return
    assert parse_rcpt_argument(line).recipient == mailbox


@given(st.text(max_size=50))
def test_xtext_round_trips(text: str) -> None:
    assert decode_xtext(encode_xtext(text)) == text


@given(dot_strings)
def test_dot_string_never_quoted(local_part: str) -> None:
    assert quote_local_part(local_part) == local_part
