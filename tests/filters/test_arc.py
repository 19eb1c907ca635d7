"""ARC verification with chains sealed by dkimpy's arc_sign, keys in DNS."""

from __future__ import annotations

from collections.abc import Iterator

import dkim
import pytest

from garrison.dkim.keys import SigningKey
from garrison.filters.arc import verify_chain
from garrison.filters.dnsutil import TxtLookup, build_sync_resolver
from tests.filters.authzone import (
    RSA_KEY,
    RSA_PEM,
    SENDER_ZONE,
    dkim_sign,
    header_of,
    mailbox,
    message_from,
    publish_key,
    resolver_settings,
    send,
    serving,
    with_dns,
)
from tests.queue.dnsserver import DNSServer

AUTHOR_KEY = SigningKey("pass.example", "sel", "rsa", RSA_KEY)
SEALER_KEY = SigningKey("list.example", "arc", "rsa", RSA_KEY)


def zone() -> dict:
    records = dict(SENDER_ZONE)
    publish_key(records, AUTHOR_KEY)
    publish_key(records, SEALER_KEY)
    return records


def through_list(modify: bool = True) -> bytes:
    """Return a message from pass.example as a mailing list forwards it.

    The list records the author's DKIM pass, tags the subject (which breaks
    the author's signature) and seals the result with ARC, as RFC 8617 §5.1
    describes for an intermediary.
    """
    original = dkim_sign(AUTHOR_KEY, message_from("author@pass.example", "news"))
    received = (
        b"Authentication-Results: list.example; dkim=pass header.d=pass.example;"
        b" spf=pass smtp.mailfrom=pass.example\r\n" + original
    )
    if modify:
        received = received.replace(b"Subject: news", b"Subject: [list] news")
    seal = dkim.arc_sign(received, b"arc", b"list.example", RSA_PEM, b"list.example")
    return b"".join(seal) + received


@pytest.fixture(scope="module")
def lookup_dns() -> Iterator[DNSServer]:
    yield from serving(zone())


@pytest.fixture
def lookup(lookup_dns: DNSServer) -> TxtLookup:
    return TxtLookup(build_sync_resolver(resolver_settings(lookup_dns)))


def test_sealed_chain_passes(lookup) -> None:
    chain = verify_chain(through_list(), lookup, 3)
    assert chain.result == "pass"
    assert chain.instance == 1
    assert chain.sealer == "list.example"


def test_changed_after_sealing_fails(lookup) -> None:
    broken = through_list().replace(b"Hello.", b"Hello, changed.")
    assert verify_chain(broken, lookup, 3).result == "fail"


def test_unsealed_message_is_none(lookup) -> None:
    assert verify_chain(message_from("a@pass.example"), lookup, 3).result == "none"


def test_missing_sealer_key_fails(settings, dns_server) -> None:
    dns = dns_server(SENDER_ZONE)
    lookup = TxtLookup(build_sync_resolver(with_dns(settings, dns)))
    assert verify_chain(through_list(), lookup, 3).result == "fail"


def unfolded_header(stored: bytes) -> bytes:
    return header_of(stored).replace(b"\r\n\t", b" ")


async def test_arc_pass_recorded_over_smtp(auth_server) -> None:
    async with auth_server(zone(), arc_trusted_sealers=["list.example"]) as server:
        reply = await send(server, through_list(), mail_from="bounce@list.example")
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    header = unfolded_header(stored)
    assert b"arc=pass (as.1.d=list.example) smtp.remote-ip=127.0.0.1" in header
    # The list broke the author's signature, so DMARC fails, and the
    # trusted sealer's chain overrides the author's p=reject.
    assert b"dkim=fail" in header
    assert b"dmarc=fail (p=reject arc=pass as.d=list.example dis=none)" in header


async def test_untrusted_sealer_does_not_override(auth_server) -> None:
    async with auth_server(zone()) as server:
        reply = await send(server, through_list(), mail_from="bounce@list.example")
        assert (reply.code, reply.enhanced) == (550, "5.7.1")
        assert mailbox(server, "INBOX") == []


async def test_broken_chain_fails_over_smtp(auth_server) -> None:
    broken = through_list().replace(b"Hello.", b"Hello, changed.")
    async with auth_server(
        zone(),
        arc_trusted_sealers=["list.example"],
        dmarc_domain_policy={"example.test": "monitor"},
    ) as server:
        reply = await send(server, broken, mail_from="bounce@list.example")
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    header = unfolded_header(stored)
    assert b"arc=fail (as.1.d=list.example" in header
    assert b"dmarc=fail (p=reject dis=reject)" in header


def test_header_starting_with_space_fails(lookup) -> None:
    assert verify_chain(b" folded\r\n" + through_list(), lookup, 3).result == "fail"


def test_invalid_base64_seal_fails(lookup) -> None:
    sealed = through_list()
    start = sealed.index(b" b=") + 3
    end = sealed.index(b"\r\nARC-Message-Signature:")
    assert (
        verify_chain(sealed[:start] + b"abc" + sealed[end:], lookup, 3).result == "fail"
    )


def test_time_limit_spent_fails(lookup) -> None:
    chain = verify_chain(through_list(), lookup, 3, time_limit=0)
    assert chain.result == "fail"
    assert chain.reason == "key lookup failed"
