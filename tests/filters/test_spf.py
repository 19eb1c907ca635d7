"""The SPF check: its DNS lookup on a loopback server, and over real SMTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import spf as pyspf

from garrison.filters.dnsutil import (
    DNSTemporaryError,
    RecordLookup,
    build_sync_resolver,
)
from garrison.filters.spf import evaluate
from tests.filters.authzone import (
    SENDER_ZONE,
    header_of,
    mailbox,
    message_from,
    resolver_settings,
    send,
    serving,
)
from tests.queue.dnsserver import DNSServer

LOOKUP_ZONE = {
    ("records.test", "A"): ["192.0.2.10", "192.0.2.11"],
    ("records.test", "AAAA"): ["2001:db8::10"],
    ("records.test", "MX"): ["10 mx.records.test."],
    ("records.test", "TXT"): ['"v=spf1 " "ip4:192.0.2.0/24 -all"'],
    ("10.2.0.192.in-addr.arpa", "PTR"): ["records.test."],
}


@pytest.fixture(scope="module")
def lookup_dns() -> Iterator[DNSServer]:
    yield from serving(LOOKUP_ZONE, servfail={"broken.test"})


@pytest.fixture
def lookup(lookup_dns: DNSServer) -> RecordLookup:
    return RecordLookup(build_sync_resolver(resolver_settings(lookup_dns)))


def test_lookup_returns_pyspf_formats(lookup: RecordLookup) -> None:
    assert sorted(value for _, value in lookup("records.test", "A", 3)) == [
        "192.0.2.10",
        "192.0.2.11",
    ]
    assert lookup("records.test", "AAAA", 3) == [
        (("records.test", "AAAA"), "2001:db8::10")
    ]
    assert lookup("records.test", "MX", 3) == [
        (("records.test", "MX"), (10, "mx.records.test"))
    ]
    assert lookup("records.test", "TXT", 3) == [
        (("records.test", "TXT"), (b"v=spf1 ", b"ip4:192.0.2.0/24 -all"))
    ]
    assert lookup("10.2.0.192.in-addr.arpa", "PTR", 3) == [
        (("10.2.0.192.in-addr.arpa", "PTR"), "records.test")
    ]


def test_lookup_missing_names_are_empty(lookup: RecordLookup) -> None:
    assert lookup("absent.test", "TXT", 3) == []
    assert lookup("records.test", "PTR", 3) == []
    assert lookup("x" * 64 + ".test", "A", 3) == []


def test_lookup_servfail_is_temporary(lookup: RecordLookup) -> None:
    with pytest.raises(pyspf.TempError):
        lookup("broken.test", "TXT", 3)


def test_unreachable_server_is_temporary(settings) -> None:
    # The test settings name 127.0.0.1:9, where nothing listens.
    lookup = RecordLookup(build_sync_resolver(settings))
    with pytest.raises(pyspf.TempError):
        lookup("records.test", "TXT", 1)


def test_evaluate_through_dns(lookup: RecordLookup) -> None:
    outcome = evaluate(
        "192.0.2.7",
        "user@records.test",
        "helo.test",
        lookup,
        receiver="mx.test",
        time_limit=5,
    )
    assert outcome.result == "pass"
    assert outcome.identity == "mailfrom"
    assert outcome.domain == "records.test"
    assert outcome.received_spf.startswith("Pass (mx.test: domain of records.test")
    failed = evaluate(
        "198.51.100.1",
        "user@records.test",
        "helo.test",
        lookup,
        receiver="mx.test",
        time_limit=5,
    )
    assert failed.result == "fail"


def test_null_sender_checks_helo(lookup: RecordLookup) -> None:
    outcome = evaluate(
        "192.0.2.7", "", "records.test", lookup, receiver="mx.test", time_limit=5
    )
    assert outcome.result == "pass"
    assert outcome.identity == "helo"
    assert outcome.domain == "records.test"


def test_no_identity_is_none(lookup: RecordLookup) -> None:
    outcome = evaluate("192.0.2.7", "", "", lookup, receiver="mx.test", time_limit=5)
    assert outcome.result == "none"


def test_servfail_gives_temperror(lookup: RecordLookup) -> None:
    outcome = evaluate(
        "192.0.2.7",
        "user@broken.test",
        "helo.test",
        lookup,
        receiver="mx.test",
        time_limit=5,
    )
    assert outcome.result == "temperror"


def test_resolve_raises_temporary_error(settings) -> None:
    from garrison.filters.dnsutil import resolve

    with pytest.raises(DNSTemporaryError):
        resolve(build_sync_resolver(settings), "records.test", "TXT", 1)


@pytest.mark.parametrize(
    ("mail_from", "result"),
    [
        ("sender@pass.example", "pass"),
        ("sender@fail.example", "fail"),
        ("sender@softfail.example", "softfail"),
        ("sender@nospf.example", "none"),
    ],
)
async def test_spf_result_over_smtp(auth_server, mail_from, result, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.filters.spf")
    domain = mail_from.partition("@")[2]
    async with auth_server() as server:
        reply = await send(server, message_from(mail_from), mail_from=mail_from)
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    header = header_of(stored)
    expected = f"spf={result} smtp.mailfrom={domain}".encode()
    assert expected in header.replace(b"\r\n\t", b" ")
    if result != "none":
        # pyspf writes the result capitalised as in RFC 7208 §9.1: "SoftFail".
        assert b"\r\nreceived-spf: " + result.encode() in header.lower()
    lines = [r.getMessage() for r in caplog.records if "event=spf " in r.getMessage()]
    assert len(lines) == 1
    assert f"result={result}" in lines[0]


async def test_record_cannot_inject_header_fields(auth_server) -> None:
    zone = dict(SENDER_ZONE)
    # \013\010 is CR LF in zone-file syntax.
    zone[("inject.example", "TXT")] = ['"v=spf1 foo\\013\\010X-Injected: yes -all"']
    async with auth_server(zone) as server:
        reply = await send(
            server,
            message_from("sender@inject.example"),
            mail_from="sender@inject.example",
        )
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    header = header_of(stored)
    assert b"\r\nX-Injected:" not in header
    assert b"spf=permerror smtp.mailfrom=inject.example" in header
    assert b'problem="foo  X-Injected:"' in header


async def test_spf_fail_rejected_when_configured(auth_server) -> None:
    async with auth_server(spf_fail_action="reject") as server:
        reply = await send(
            server, message_from("sender@fail.example"), mail_from="sender@fail.example"
        )
        assert (reply.code, reply.enhanced) == (550, "5.7.23")
        assert "fail.example" in reply.text
        assert mailbox(server, "INBOX") == []


async def test_spf_fail_recorded_by_default(auth_server) -> None:
    async with auth_server() as server:
        # No DMARC record for fail.example, so nothing else acts.
        reply = await send(
            server, message_from("sender@fail.example"), mail_from="sender@fail.example"
        )
        assert reply.code == 250
        assert len(mailbox(server, "INBOX")) == 1


async def test_null_sender_uses_helo_over_smtp(auth_server) -> None:
    async with auth_server() as server:
        reply = await send(
            server,
            message_from("sender@pass.example"),
            mail_from="",
            helo="pass.example",
        )
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    assert b"spf=pass smtp.helo=pass.example" in header_of(stored).replace(
        b"\r\n\t", b" "
    )


async def test_spf_fail_reject_follows_domain_policy(auth_server) -> None:
    options = {"spf_fail_action": "reject"}
    for mode, box in (("monitor", "INBOX"), ("quarantine-only", "Junk")):
        policy = {"example.test": mode}
        async with auth_server(dmarc_domain_policy=policy, **options) as server:
            reply = await send(
                server, message_from("sender@fail.example"), mail_from="sender@fail.example"
            )
            assert reply.code == 250, mode
            assert len(mailbox(server, box)) == 1, mode
