"""DKIM verification: signatures by Garrison's signer and by dkimpy, keys in DNS."""

from __future__ import annotations

from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from garrison.dkim.keys import SigningKey
from garrison.filters.dkim_verify import SignatureResult, verify_message
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
)
from tests.queue.dnsserver import DNSServer

RSA = SigningKey("pass.example", "sel", "rsa", RSA_KEY)
ED25519 = SigningKey(
    "pass.example", "ed", "ed25519", ed25519.Ed25519PrivateKey.generate()
)
UNPUBLISHED = SigningKey("pass.example", "gone", "rsa", RSA_KEY)
BROKEN = SigningKey("broken.example", "sel", "rsa", RSA_KEY)
MESSAGE = message_from("Sender <sender@pass.example>", "signed")


def zone() -> dict:
    records = dict(SENDER_ZONE)
    publish_key(records, RSA)
    publish_key(records, ED25519)
    # dkimpy's signature uses its own selector for the same key.
    records[("py._domainkey.pass.example", "TXT")] = records[
        ("sel._domainkey.pass.example", "TXT")
    ]
    return records


@pytest.fixture(scope="module")
def lookup_dns() -> Iterator[DNSServer]:
    yield from serving(zone(), servfail={"sel._domainkey.broken.example"})


@pytest.fixture
def lookup(lookup_dns: DNSServer) -> TxtLookup:
    return TxtLookup(build_sync_resolver(resolver_settings(lookup_dns)))


def verify(message: bytes, lookup: TxtLookup, **options) -> list[SignatureResult]:
    options.setdefault("max_signatures", 8)
    return verify_message(message, lookup, timeout=3, **options)


def test_own_signatures_pass(lookup) -> None:
    signed = dkim_sign(ED25519, dkim_sign(RSA, MESSAGE))
    results = verify(signed, lookup)
    assert [(r.result, r.domain, r.selector) for r in results] == [
        ("pass", "pass.example", "ed"),
        ("pass", "pass.example", "sel"),
    ]
    assert all(len(r.b_prefix) == 8 for r in results)


def test_dkimpy_signature_passes(lookup) -> None:
    field = dkim.sign(MESSAGE, b"py", b"pass.example", RSA_PEM)
    [result] = verify(field + MESSAGE, lookup)
    assert result.result == "pass"
    assert result.selector == "py"


def test_tampered_body_fails(lookup) -> None:
    signed = dkim_sign(RSA, MESSAGE).replace(b"Hello.", b"Hello!")
    [result] = verify(signed, lookup)
    assert result.result == "fail"
    assert result.reason == "body hash mismatch"


def test_tampered_header_fails(lookup) -> None:
    signed = dkim_sign(RSA, MESSAGE).replace(b"Subject: signed", b"Subject: changed")
    [result] = verify(signed, lookup)
    assert result.result == "fail"


def test_missing_key_is_permerror(lookup) -> None:
    [result] = verify(dkim_sign(UNPUBLISHED, MESSAGE), lookup)
    assert result.result == "permerror"


def test_failed_key_lookup_is_temperror(lookup) -> None:
    [result] = verify(dkim_sign(BROKEN, MESSAGE), lookup)
    assert result.result == "temperror"


def test_malformed_signature_is_neutral(lookup) -> None:
    signed = b"DKIM-Signature: v=1; a=rsa-sha256; d=pass.example\r\n" + MESSAGE
    [result] = verify(signed, lookup)
    assert result.result == "neutral"
    assert result.domain == "pass.example"


def test_unsigned_message_has_no_results(lookup) -> None:
    assert verify(MESSAGE, lookup) == []


def test_signatures_past_limit_not_verified(lookup) -> None:
    signed = dkim_sign(ED25519, dkim_sign(RSA, MESSAGE))
    results = verify(signed, lookup, max_signatures=1)
    assert [r.result for r in results] == ["pass", "policy"]


def test_large_message_is_neutral(lookup) -> None:
    header = header_of(dkim_sign(RSA, MESSAGE))
    [result] = verify(header + b"\r\n", lookup, too_large=True)
    assert result.result == "neutral"
    assert result.reason == "message too large to verify"
    assert result.domain == "pass.example"


def test_resinfo_quotes_b_prefix() -> None:
    result = SignatureResult("pass", "pass.example", "sel", "ab/c+d=e")
    assert result.resinfo() == (
        'dkim=pass header.d=pass.example header.s=sel header.b="ab/c+d=e"'
    )


async def test_signed_message_passes_over_smtp(auth_server) -> None:
    async with auth_server(zone()) as server:
        reply = await send(server, dkim_sign(RSA, MESSAGE))
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    unfolded = header_of(stored).replace(b"\r\n\t", b" ")
    assert b"dkim=pass header.d=pass.example header.s=sel header.b=" in unfolded


async def test_tampered_message_fails_over_smtp(auth_server) -> None:
    tampered = dkim_sign(RSA, MESSAGE).replace(b"Hello.", b"Hello!")
    async with auth_server(zone()) as server:
        # SPF passes and aligns, so DMARC (p=reject) passes and delivers.
        reply = await send(server, tampered)
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    unfolded = header_of(stored).replace(b"\r\n\t", b" ")
    assert b"dkim=fail (body hash mismatch) header.d=pass.example" in unfolded
    assert b"dmarc=pass" in unfolded


async def test_large_message_not_verified_over_smtp(auth_server) -> None:
    async with auth_server(zone(), dkim_max_message_size=100) as server:
        reply = await send(server, dkim_sign(RSA, MESSAGE))
        assert reply.code == 250
        [stored] = mailbox(server, "INBOX")
    unfolded = header_of(stored).replace(b"\r\n\t", b" ")
    assert b"dkim=neutral (message too large to verify)" in unfolded


def test_invalid_base64_signature_is_neutral(lookup) -> None:
    signed = dkim_sign(RSA, MESSAGE)
    start = signed.index(b" b=") + 3
    broken = signed[:start] + b"abc" + signed[signed.index(b"\r\nFrom:") :]
    [result] = verify(broken, lookup)
    assert result.result == "neutral"


def test_header_starting_with_space_is_neutral(lookup) -> None:
    [result] = verify(b" folded\r\n" + dkim_sign(RSA, MESSAGE), lookup)
    assert result.result == "neutral"
    assert result.reason == "malformed header section"


def test_time_limit_spent_is_temperror(lookup) -> None:
    signed = dkim_sign(ED25519, dkim_sign(RSA, MESSAGE))
    results = verify(signed, lookup, time_limit=0)
    assert [r.result for r in results] == ["temperror", "temperror"]
