"""DMARC: record parsing, alignment, discovery over DNS, and policies over SMTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace

import authres
import authres.arc
import authres.dmarc
import pytest

from garrison.delivery.pipeline import Envelope, Recipient
from garrison.dkim.keys import SigningKey
from garrison.filters.dkim_verify import UNVERIFIED_TOO_LARGE, SignatureResult
from garrison.filters.dmarc import Discovery, DMARCCheck, discover_policy
from garrison.filters.dmarc_record import (
    DMARCRecord,
    InvalidRecord,
    aligned,
    author_domains,
    organizational_domain,
    parse_record,
)
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.queue.routing import build_resolver
from garrison.store import BlobRef
from tests.filters.authzone import (
    RSA_KEY,
    SENDER_ZONE,
    dkim_sign,
    header_of,
    mailbox,
    message_from,
    publish_key,
    resolver_settings,
    send,
    serving,
)
from tests.queue.dnsserver import DNSServer

# -- records, organizational domains, alignment ------------------------------


def test_record_tags_parsed() -> None:
    record = parse_record("v=DMARC1; p=Reject; sp=none; adkim=s; aspf=s; pct=25")
    assert record == DMARCRecord("reject", "none", "s", "s", 25)


def test_record_defaults() -> None:
    assert parse_record("v=DMARC1; p=quarantine") == DMARCRecord("quarantine")


def test_record_invalid_optional_tags_use_defaults() -> None:
    record = parse_record("v=DMARC1; p=none; adkim=x; pct=200; pct=5; foo=bar")
    assert record == DMARCRecord("none")


def test_record_invalid_policy_with_rua_is_none() -> None:
    record = parse_record("v=DMARC1; p=bogus; rua=mailto:d@example.org")
    assert record.policy == "none"


def test_record_invalid_policy_without_rua_raises() -> None:
    with pytest.raises(InvalidRecord):
        parse_record("v=DMARC1; p=bogus")
    with pytest.raises(InvalidRecord):
        parse_record("v=DMARC1")


def test_organizational_domain() -> None:
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("mail.example.org") == "example.org"
    assert organizational_domain("co.uk") == "co.uk"


def test_alignment_modes() -> None:
    assert aligned("mail.example.org", "example.org", "r")
    assert not aligned("mail.example.org", "example.org", "s")
    assert aligned("Example.ORG.", "example.org", "s")
    assert not aligned("example.net", "example.org", "r")
    assert not aligned("", "example.org", "r")


def test_author_domains() -> None:
    assert author_domains(b"From: A <a@Example.ORG>\r\n").single == "example.org"
    same = author_domains(b"From: a@example.org, b@example.org\r\n")
    assert same.single == "example.org"
    assert author_domains(b"From: a@example.org, b@example.net\r\n").single is None
    twice = author_domains(b"From: a@example.org\r\nFrom: a@example.org\r\n")
    assert twice.fields == 2
    assert twice.single is None
    assert author_domains(b"Subject: none\r\n").fields == 0
    assert author_domains(b"From: undisclosed\r\n").invalid == 1
    folded = author_domains(b"From: Someone\r\n <s@example.org>\r\n")
    assert folded.single == "example.org"
    idna = author_domains("From: a@bär.example\r\n".encode())
    assert idna.single == "xn--br-via.example"


# -- discovery over DNS -------------------------------------------------------

DISCOVERY_ZONE = {
    ("_dmarc.example.org", "TXT"): ['"v=DMARC1; p=reject; sp=quarantine"'],
    ("_dmarc.own.example.org", "TXT"): ['"v=DMARC1; p=none"'],
    ("_dmarc.twice.example", "TXT"): ['"v=DMARC1; p=none"', '"v=DMARC1; p=reject"'],
    ("_dmarc.other.example", "TXT"): ['"v=spf1 -all"'],
    ("_dmarc.bad.example", "TXT"): ['"v=DMARC1; p=maybe"'],
}


@pytest.fixture(scope="module")
def discovery_dns() -> Iterator[DNSServer]:
    yield from serving(DISCOVERY_ZONE, servfail={"_dmarc.broken.example"})


@pytest.fixture
def resolver(discovery_dns: DNSServer):
    return build_resolver(resolver_settings(discovery_dns))


async def test_discovery_at_author_domain(resolver) -> None:
    found = await discover_policy(resolver, "own.example.org")
    assert found == Discovery("found", DMARCRecord("none"), False)


async def test_discovery_falls_back_to_organizational_domain(resolver) -> None:
    found = await discover_policy(resolver, "mail.example.org")
    assert found.status == "found"
    assert found.organizational
    assert found.record == DMARCRecord("reject", "quarantine")


async def test_discovery_without_record(resolver) -> None:
    assert (await discover_policy(resolver, "other.example")).status == "none"
    assert (await discover_policy(resolver, "absent.example")).status == "none"


async def test_discovery_several_records_is_none(resolver) -> None:
    found = await discover_policy(resolver, "twice.example")
    assert found.status == "none"
    assert "several" in found.reason


async def test_discovery_invalid_record_is_permerror(resolver) -> None:
    assert (await discover_policy(resolver, "bad.example")).status == "permerror"


async def test_discovery_servfail_is_temperror(resolver) -> None:
    assert (await discover_policy(resolver, "broken.example")).status == "temperror"


# -- policy per recipient domain ----------------------------------------------


def inbound(*recipients: tuple[str, int], header: bytes) -> InboundMessage:
    envelope = Envelope(
        "Q1",
        "sender@fail.example",
        [
            Recipient(address, [SimpleNamespace(id=account_id)])  # type: ignore[list-item]
            for address, account_id in recipients
        ],
        client_ip="127.0.0.1",
    )
    return InboundMessage(envelope, BlobRef("b", 0, b""), header, 0)


def failing_check(settings, **options) -> DMARCCheck:
    authentication = settings.authentication.model_copy(update=options)
    return DMARCCheck(settings.model_copy(update={"authentication": authentication}))


def evaluate(
    check: DMARCCheck, message: InboundMessage, record: DMARCRecord
) -> CheckResult:
    return check._evaluate(
        message, Verdict(), "fail.example", Discovery("found", record)
    )


def test_reject_needs_every_domain_enforcing(settings) -> None:
    check = failing_check(settings, dmarc_domain_policy={"b.test": "monitor"})
    header = b"From: s@fail.example\r\n"
    single = evaluate(
        check, inbound(("x@a.test", 1), header=header), DMARCRecord("reject")
    )
    assert single.reject is not None
    assert single.reject.code == 550
    mixed = evaluate(
        check,
        inbound(("x@a.test", 1), ("y@B.test", 2), header=header),
        DMARCRecord("reject"),
    )
    assert mixed.reject is None
    assert mixed.junk is False
    assert mixed.junk_accounts == {1}


def test_quarantine_only_turns_reject_into_junk(settings) -> None:
    check = failing_check(settings, dmarc_domain_policy={"a.test": "quarantine-only"})
    result = evaluate(
        check, inbound(("x@a.test", 1), header=b""), DMARCRecord("reject")
    )
    assert result.reject is None
    assert result.junk is True


def test_pct_outside_sample_weakens_policy(settings) -> None:
    check = failing_check(settings)
    result = evaluate(
        check, inbound(("x@a.test", 1), header=b""), DMARCRecord("reject", pct=0)
    )
    assert result.reject is None
    assert result.junk is True
    assert "dis=quarantine" in result.auth_results[0]


def test_trusted_arc_sealer_overrides_failure(settings) -> None:
    check = failing_check(settings, arc_trusted_sealers=["List.Example"])
    verdict = Verdict()
    verdict.add(
        CheckResult("arc", details={"result": "pass", "sealer": "list.example"})
    )
    message = inbound(("x@a.test", 1), header=b"")
    result = check._evaluate(
        message, verdict, "fail.example", Discovery("found", DMARCRecord("reject"))
    )
    assert result.reject is None
    assert result.junk is False
    assert result.auth_results[0].startswith("dmarc=fail (p=reject arc=pass")


def test_untrusted_arc_sealer_does_not_override(settings) -> None:
    check = failing_check(settings)
    verdict = Verdict()
    verdict.add(
        CheckResult("arc", details={"result": "pass", "sealer": "list.example"})
    )
    result = check._evaluate(
        inbound(("x@a.test", 1), header=b""),
        verdict,
        "fail.example",
        Discovery("found", DMARCRecord("reject")),
    )
    assert result.reject is not None


def test_dkim_alignment_passes(settings) -> None:
    check = failing_check(settings)
    verdict = Verdict()
    signature = SignatureResult("pass", "mail.fail.example", "s", "abcdefgh")
    verdict.add(CheckResult("dkim", details={"signatures": [signature]}))
    result = check._evaluate(
        inbound(("x@a.test", 1), header=b""),
        verdict,
        "fail.example",
        Discovery("found", DMARCRecord("reject")),
    )
    assert result.details["result"] == "pass"
    strict = check._evaluate(
        inbound(("x@a.test", 1), header=b""),
        verdict,
        "fail.example",
        Discovery("found", DMARCRecord("reject", adkim="s")),
    )
    assert strict.details["result"] == "fail"


# -- over SMTP ------------------------------------------------------------------


def unfolded_header(stored: bytes) -> bytes:
    return header_of(stored).replace(b"\r\n\t", b" ")


async def test_reject_policy_refuses_in_dialogue(auth_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.filters.dmarc")
    async with auth_server() as server:
        reply = await send(
            server,
            message_from("sender@reject.example"),
            mail_from="sender@reject.example",
        )
        assert (reply.code, reply.enhanced) == (550, "5.7.1")
        assert "DMARC" in reply.text
        assert "reject.example" in reply.text
        assert mailbox(server, "INBOX") == []
        assert mailbox(server, "Junk") == []
    [line] = [
        r.getMessage() for r in caplog.records if "event=dmarc " in r.getMessage()
    ]
    assert "result=fail" in line
    assert "action=reject" in line


async def test_reject_policy_with_forged_from(auth_server) -> None:
    # SPF passes for the envelope domain, but it does not align with From.
    async with auth_server() as server:
        reply = await send(server, message_from("ceo@reject.example"))
        assert reply.code == 550
        assert mailbox(server, "INBOX") == []


async def test_quarantine_policy_files_into_junk(auth_server) -> None:
    async with auth_server() as server:
        reply = await send(
            server,
            message_from("sender@quarantine.example"),
            mail_from="sender@quarantine.example",
        )
        assert reply.code == 250
        assert mailbox(server, "INBOX") == []
        [stored] = mailbox(server, "Junk")
    assert b"dmarc=fail (p=quarantine dis=quarantine)" in unfolded_header(stored)


async def test_aligned_pass_lands_in_inbox(auth_server) -> None:
    async with auth_server() as server:
        reply = await send(server, message_from("Sender <sender@pass.example>"))
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    header = unfolded_header(stored)
    assert (
        b"Authentication-Results: mail.example.test; spf=pass "
        b"smtp.mailfrom=pass.example; dkim=none; arc=none "
        b"smtp.remote-ip=127.0.0.1; dmarc=pass (p=reject dis=none) "
        b"header.from=pass.example\r\n"
    ) in header


async def test_relaxed_alignment_and_subdomain_policy(auth_server) -> None:
    async with auth_server() as server:
        # MAIL FROM mail.relaxed.example aligns with From relaxed.example.
        reply = await send(
            server,
            message_from("a@relaxed.example"),
            mail_from="bounce@mail.relaxed.example",
        )
        assert reply.code == 250
        # From a subdomain without its own record: sp=quarantine applies.
        reply = await send(
            server,
            message_from("a@news.relaxed.example"),
            mail_from="sender@fail.example",
        )
        assert reply.code == 250
        [passed] = mailbox(server, "INBOX")
        [junked] = mailbox(server, "Junk")
    assert b"dmarc=pass (p=reject dis=none)" in unfolded_header(passed)
    assert b"dmarc=fail (p=quarantine dis=quarantine)" in unfolded_header(junked)


async def test_monitor_domain_delivers_to_inbox(auth_server) -> None:
    async with auth_server(dmarc_domain_policy={"example.test": "monitor"}) as server:
        reply = await send(
            server,
            message_from("sender@reject.example"),
            mail_from="sender@reject.example",
        )
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    assert b"dmarc=fail (p=reject dis=none)" not in unfolded_header(stored)
    assert b"dmarc=fail (p=reject dis=reject)" in unfolded_header(stored)


async def test_forged_results_for_our_id_removed(auth_server) -> None:
    forged = (
        b"Authentication-Results: mail.example.test; dmarc=pass header.from=x\r\n"
        + message_from("sender@pass.example")
    )
    async with auth_server() as server:
        reply = await send(server, forged)
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    header = unfolded_header(stored)
    assert b"dmarc=pass header.from=x" not in header
    assert header.count(b"Authentication-Results:") == 1


async def test_missing_from_rejected(auth_server) -> None:
    message = b"To: alice@example.test\r\nSubject: anonymous\r\n\r\nHi.\r\n"
    async with auth_server() as server:
        reply = await send(server, message)
        assert (reply.code, reply.enhanced) == (550, "5.7.1")
        assert "From" in reply.text
        assert mailbox(server, "INBOX") == []


async def test_two_from_fields_recorded_when_configured(auth_server) -> None:
    message = b"From: a@pass.example\r\n" + message_from("b@pass.example")
    async with auth_server(dmarc_invalid_from="record") as server:
        reply = await send(server, message)
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    assert b"dmarc=permerror (several From fields)" in unfolded_header(stored)


async def test_written_field_parses_as_rfc8601(auth_server) -> None:
    key = SigningKey("pass.example", "sel", "rsa", RSA_KEY)
    signed = dkim_sign(key, message_from("sender@pass.example"))
    zone = dict(SENDER_ZONE)
    publish_key(zone, key)
    async with auth_server(zone) as server:
        reply = await send(server, signed, helo="[127.0.0.1]")
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")

    [field] = [
        line
        for line in unfolded_header(stored).split(b"\r\n")
        if line.startswith(b"Authentication-Results: mail.example.test;")
    ]

    parsed = authres.AuthenticationResultsHeader.parse(field.decode())
    assert parsed.authserv_id == "mail.example.test"
    methods = {result.method: result for result in parsed.results}
    assert [result.method for result in parsed.results] == [
        "spf",
        "dkim",
        "arc",
        "dmarc",
    ]
    assert methods["spf"].result == "pass"
    assert methods["dkim"].result == "pass"
    assert methods["arc"].result == "none"
    assert methods["dmarc"].result == "pass"

    dkim_properties = {p.name: p.value for p in methods["dkim"].properties}
    assert dkim_properties["d"] == "pass.example"
    assert dkim_properties["s"] == "sel"
    assert len(dkim_properties["b"]) == 8
    dmarc_properties = {p.name: p.value for p in methods["dmarc"].properties}
    assert dmarc_properties["from"] == "pass.example"


async def test_policy_looked_up_once_per_message(auth_server) -> None:
    async with auth_server() as server:
        reply = await send(server, message_from("sender@pass.example"))
        assert reply.code == 250
        queries = list(server.dns.queries)
    # Discovery starts before SPF, and the DMARC check reuses its result.
    assert queries.count(("_dmarc.pass.example", "TXT")) == 1
    assert queries.count(("pass.example", "TXT")) == 1


def test_invalid_from_follows_domain_policy(settings) -> None:
    check = failing_check(settings, dmarc_domain_policy={"b.test": "quarantine-only"})
    header = b"From: a@one.example, b@two.example\r\n"
    enforced = check._invalid_from(
        inbound(("x@a.test", 1), header=header), author_domains(header)
    )
    assert enforced.reject is not None
    assert enforced.reject.text.startswith("Message rejected: it must have one From")
    weakened = check._invalid_from(
        inbound(("y@b.test", 2), header=header), author_domains(header)
    )
    assert weakened.reject is None
    assert weakened.junk is True
    assert weakened.auth_results == ["dmarc=permerror (several author domains)"]


def test_unverified_aligned_signature_junks_instead_of_reject(settings) -> None:
    check = failing_check(settings)
    verdict = Verdict()
    unverified = SignatureResult(
        "neutral", "fail.example", "s", "abcdefgh", UNVERIFIED_TOO_LARGE
    )
    verdict.add(CheckResult("dkim", details={"signatures": [unverified]}))
    result = check._evaluate(
        inbound(("x@a.test", 1), header=b""),
        verdict,
        "fail.example",
        Discovery("found", DMARCRecord("reject")),
    )
    assert result.reject is None
    assert result.junk is True
    assert "dkim=unverified" in result.auth_results[0]
    # A signature of another domain does not count.
    other = Verdict()
    foreign = SignatureResult("neutral", "other.example", "s", "abcdefgh", UNVERIFIED_TOO_LARGE)
    other.add(CheckResult("dkim", details={"signatures": [foreign]}))
    refused = check._evaluate(
        inbound(("x@a.test", 1), header=b""),
        other,
        "fail.example",
        Discovery("found", DMARCRecord("reject")),
    )
    assert refused.reject is not None
