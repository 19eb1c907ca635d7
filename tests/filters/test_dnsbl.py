"""DNS block and allow lists: site syntax, lookups and the SMTP rejections.

The lists are served by the test DNS server on 127.0.0.1 (tests/queue/
dnsserver.py). Clients connect from 127.0.0.2 (listed), 127.0.0.3 (listed
and allow-listed) and 127.0.0.1 (not listed), by binding the client
socket to that loopback address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

import pytest
from pydantic import ValidationError

from garrison.config import Settings
from garrison.config.schema import ReputationSettings
from garrison.filters.reputation import (
    ClientReputation,
    SiteError,
    parse_site,
    query_name,
)
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.governance.policy import PolicyCache
from garrison.queue.routing import build_resolver
from garrison.server.runner import Runner
from tests.conftest import RunningServer
from tests.queue.conftest import dns_server  # noqa: F401 - the fixture
from tests.queue.dnsserver import DNSServer
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, inbox_messages

LISTED = "127.0.0.2"
ALLOWED = "127.0.0.3"
CLEAN = "127.0.0.1"

ZONE = {
    # 127.0.0.2 is on both block lists; 127.0.0.3 on the block and allow list.
    ("2.0.0.127.bl.test", "A"): ["127.0.0.2"],
    ("2.0.0.127.second.test", "A"): ["127.0.0.4"],
    ("3.0.0.127.bl.test", "A"): ["127.0.0.2"],
    ("3.0.0.127.wl.test", "A"): ["127.0.10.1"],
    # 2001:db8::2 on the block list, as RFC 5782 §2.4 nibbles.
    ("2." + "0." * 23 + "8.b.d.0.1.0.0.2.bl.test", "A"): ["127.0.0.2"],
    # A list's "query refused" code, which a filter must ignore.
    ("2.0.0.127.errors.test", "A"): ["127.255.255.254"],
    ("bl.test", "SOA"): ["ns.bl.test. admin.bl.test. 1 3600 600 86400 60"],
}

MESSAGE = b"From: sender@example.org\r\nSubject: dnsbl\r\n\r\nbody\r\n"


@asynccontextmanager
async def connect_from(port: int, source: str) -> AsyncIterator[Dialogue]:
    """Open an SMTP dialogue whose client socket is bound to `source`."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0)
    )
    try:
        yield Dialogue(reader, writer)
    finally:
        writer.close()
        with suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)


ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def dnsbl_server(settings: Settings, dns_server) -> ServerFactory:  # noqa: F811
    """Return a factory running the server with [reputation] options and ZONE."""

    @asynccontextmanager
    async def run(**options: object) -> AsyncIterator[RunningServer]:
        dns = dns_server(ZONE, servfail={"2.0.0.127.broken.test"})
        configured = settings.model_copy(
            update={
                "reputation": ReputationSettings(**options),
                "dns": settings.dns.model_copy(update={"nameservers": [dns.address]}),
            }
        )
        runner = Runner(configured, run_queue=False)
        await runner.start()
        try:
            server = RunningServer(runner, configured)
            server.dns = dns  # type: ignore[attr-defined]
            yield server
        finally:
            await runner.stop()

    return run


# -- site syntax -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "weight"),
    [
        ("zen.example", "zen.example", 1),
        ("zen.example*3", "zen.example", 3),
        ("zen.example=127.0.0.[2..11]*3", "zen.example", 3),
        ("Zen.Example.=127.0.0.2", "zen.example", 1),
    ],
)
def test_parse_site_zone_and_weight(text: str, zone: str, weight: int) -> None:
    site = parse_site(text)
    assert site.zone == zone
    assert site.weight == weight


def test_parse_site_filter_ranges_and_lists() -> None:
    site = parse_site("zen.example=127.0.[0;2..3].[2..11;20]")
    assert site.matches("127.0.0.2")
    assert site.matches("127.0.3.11")
    assert site.matches("127.0.2.20")
    assert not site.matches("127.0.1.2")
    assert not site.matches("127.0.0.12")
    assert not site.matches("127.255.255.254")
    assert not site.matches("not-an-address")


def test_site_without_filter_matches_any_record() -> None:
    assert parse_site("zen.example").matches("127.255.255.254")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "=127.0.0.2",
        "zen.example=127.0.0",
        "zen.example=127.0.0.[2..300]",
        "zen.example=127.0.0.[x]",
        "zen.example*x",
        "zen example",
    ],
)
def test_parse_site_rejects_invalid(text: str) -> None:
    with pytest.raises(SiteError):
        parse_site(text)


@pytest.mark.parametrize("text", ["zen example", "zen.example=127.0.0", "zen.example*"])
def test_settings_reject_invalid_site(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid DNS list"):
        ReputationSettings(dnsbl_sites=[text])


def test_query_name_reverses_ipv4_octets() -> None:
    assert query_name("192.0.2.99", "bl.test") == "99.2.0.192.bl.test"
    assert query_name("::ffff:192.0.2.99", "bl.test") == "99.2.0.192.bl.test"


def test_query_name_reverses_ipv6_nibbles() -> None:
    name = query_name("2001:db8::1", "bl.test")
    # 2001:0db8:0000:...:0001 has 32 nibbles: 1, 23 zeros, then 8.b.d.0.1.0.0.2.
    assert name == "1." + "0." * 23 + "8.b.d.0.1.0.0.2.bl.test"


def test_query_name_ignores_non_address() -> None:
    assert query_name("unix-socket", "bl.test") is None


# -- lookups -----------------------------------------------------------------


def reputation_for(
    settings: Settings, dns: DNSServer, **options: object
) -> ClientReputation:
    configured = settings.model_copy(
        update={"dns": settings.dns.model_copy(update={"nameservers": [dns.address]})}
    )
    return ClientReputation(
        ReputationSettings(**options),
        PolicyCache(settings.db_path, 0),
        build_resolver(configured),
    )


async def test_lookup_adds_weights_of_listing_zones(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(
        settings,
        dns,
        dnsbl_sites=["bl.test*2", "second.test", "other.test"],
        dnsbl_threshold=3,
    )
    result = await reputation.lookup(LISTED)
    assert [hit.site.zone for hit in result.blocks] == ["bl.test", "second.test"]
    assert result.score == 3
    assert result.listed
    assert result.blocking_zone == "bl.test"
    assert result.failed == []
    assert result.symbols() == {"DNSBL_bl.test": 2.0, "DNSBL_second.test": 1.0}


async def test_lookup_ipv6_client(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(settings, dns, dnsbl_sites=["bl.test"])
    listed = await reputation.lookup("2001:db8::2")
    clean = await reputation.lookup("2001:db8::3")
    assert listed.listed
    assert not clean.listed


async def test_lookup_below_threshold_not_listed(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(
        settings, dns, dnsbl_sites=["bl.test"], dnsbl_threshold=2
    )
    result = await reputation.lookup(LISTED)
    assert result.score == 1
    assert not result.listed


async def test_lookup_filter_ignores_error_codes(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(
        settings, dns, dnsbl_sites=["errors.test=127.0.0.[2..11]"]
    )
    result = await reputation.lookup(LISTED)
    assert result.blocks == []
    assert not result.listed


async def test_allow_list_overrides_block_list(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(
        settings,
        dns,
        dnsbl_sites=["bl.test"],
        dnswl_sites=["wl.test=127.0.[0..255].[0..3]*2"],
    )
    result = await reputation.lookup(ALLOWED)
    assert result.score == 1
    assert result.allowlisted
    assert not result.listed
    assert result.symbols() == {"DNSBL_bl.test": 1.0, "DNSWL_wl.test": -2.0}


async def test_failed_query_never_lists(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE, servfail={"2.0.0.127.broken.test"})
    reputation = reputation_for(settings, dns, dnsbl_sites=["broken.test"])
    result = await reputation.lookup(LISTED)
    assert result.failed == ["broken.test"]
    assert not result.listed
    # A result with a failed zone is not cached, so the next lookup queries again.
    await reputation.lookup(LISTED)
    assert dns.queries.count(("2.0.0.127.broken.test", "A")) >= 2


async def test_unreachable_server_times_out_unlisted(settings) -> None:
    # Nothing listens on 127.0.0.1:9, the discard port: the queries time out.
    reputation = ClientReputation(
        ReputationSettings(dnsbl_sites=["bl.test"], dns_timeout=0.3),
        PolicyCache(settings.db_path, 0),
        build_resolver(settings),
    )
    started = time.monotonic()
    result = await reputation.lookup(LISTED)
    assert time.monotonic() - started < 2.0
    assert result.failed == ["bl.test"]
    assert not result.listed


async def test_lookup_cached_per_address(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(settings, dns, dnsbl_sites=["bl.test"], cache_ttl=60)
    first, second = await asyncio.gather(
        reputation.lookup(LISTED), reputation.lookup(LISTED)
    )
    third = await reputation.lookup(LISTED)
    assert first is second is third
    assert dns.queries.count(("2.0.0.127.bl.test", "A")) == 1


async def test_cache_drops_oldest_address(settings, dns_server) -> None:  # noqa: F811
    dns = dns_server(ZONE)
    reputation = reputation_for(settings, dns, dnsbl_sites=["bl.test"], cache_size=1)
    await reputation.lookup(LISTED)
    await reputation.lookup(CLEAN)
    await reputation.lookup(LISTED)
    assert dns.queries.count(("2.0.0.127.bl.test", "A")) == 2


# -- SMTP --------------------------------------------------------------------


async def test_listed_client_rejected_at_rcpt(dnsbl_server) -> None:
    async with dnsbl_server(dnsbl_sites=["bl.test=127.0.0.[2..11]"]) as server:
        async with connect_from(server.port("smtp"), LISTED) as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            reply = await smtp.command(f"RCPT TO:<{ALICE}>", 554, "5.7.1")
            assert reply.lines == [
                "5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test"
            ]
            await smtp.command("DATA", 503)
            await smtp.command("QUIT", 221)

        async with connect_from(server.port("smtp"), CLEAN) as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command("QUIT", 221)


async def test_listed_client_rejected_at_connect(dnsbl_server) -> None:
    options = {"dnsbl_sites": ["bl.test"], "dnsbl_reject_at": "connect"}
    async with dnsbl_server(**options) as server:
        async with connect_from(server.port("smtp"), LISTED) as smtp:
            greeting = await smtp.expect(554, "5.7.1")
            assert "client [127.0.0.2] blocked using bl.test" in greeting.text
            await smtp.command("EHLO client.example", 503, "5.5.1")
            await smtp.command("MAIL FROM:<sender@example.org>", 503, "5.5.1")
            await smtp.command("NOT-A-COMMAND", 503, "5.5.1")
            await smtp.command("QUIT", 221)
            await smtp.expect_closed()

        async with connect_from(server.port("smtp"), CLEAN) as smtp:
            await smtp.hello()
            await smtp.command("QUIT", 221)


async def test_allow_list_exempts_at_connect(dnsbl_server) -> None:
    options = {
        "dnsbl_sites": ["bl.test"],
        "dnswl_sites": ["wl.test"],
        "dnsbl_reject_at": "connect",
    }
    async with dnsbl_server(**options) as server:
        async with connect_from(server.port("smtp"), ALLOWED) as smtp:
            await smtp.hello()
            await smtp.command("QUIT", 221)


async def test_allow_listed_client_accepted(dnsbl_server) -> None:
    options = {"dnsbl_sites": ["bl.test"], "dnswl_sites": ["wl.test"]}
    async with dnsbl_server(**options) as server:
        recorder = Recorder()
        chain = server.runner.services.delivery.checks
        chain.checks.append(recorder)
        async with connect_from(server.port("smtp"), ALLOWED) as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command("DATA", 354)
            await smtp.send(MESSAGE + b".\r\n")
            await smtp.expect(250)
            await smtp.command("QUIT", 221)
        [verdict] = recorder.verdicts
        reputation = verdict.results["reputation"]
        assert reputation.symbols == {"DNSBL_bl.test": 1.0, "DNSWL_wl.test": -1.0}
        assert verdict.symbols["DNSWL_wl.test"] == -1.0
        details = reputation.details
        assert details["dnswl_listed"] is True
        assert details["dnsbl_listed"] is False
        assert len(inbox_messages(server)) == 1


async def test_below_threshold_accepted_with_symbol(dnsbl_server) -> None:
    options = {"dnsbl_sites": ["bl.test", "second.test"], "dnsbl_threshold": 3}
    async with dnsbl_server(**options) as server:
        recorder = Recorder()
        server.runner.services.delivery.checks.checks.append(recorder)
        async with connect_from(server.port("smtp"), LISTED) as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command("DATA", 354)
            await smtp.send(MESSAGE + b".\r\n")
            await smtp.expect(250)
            await smtp.command("QUIT", 221)
        [verdict] = recorder.verdicts
        assert verdict.symbols["DNSBL_bl.test"] == 1.0
        assert verdict.symbols["DNSBL_second.test"] == 1.0
        assert verdict.results["reputation"].details["dnsbl_score"] == 2
        # The connect-time lookup filled the cache that the check read.
        assert server.dns.queries.count(("2.0.0.127.bl.test", "A")) == 1


async def test_submission_listener_not_screened(settings, dns_server) -> None:  # noqa: F811
    from garrison.config import ListenerSettings

    dns = dns_server(ZONE)
    submission = ListenerSettings(
        name="submission", protocol="submission", port=0, tls="starttls"
    )
    configured = settings.model_copy(
        update={
            "listeners": [*settings.listeners, submission],
            "reputation": ReputationSettings(
                dnsbl_sites=["bl.test"], dnsbl_reject_at="connect"
            ),
            "dns": settings.dns.model_copy(update={"nameservers": [dns.address]}),
        }
    )
    runner = Runner(configured, run_queue=False)
    await runner.start()
    try:
        async with connect_from(runner.port("submission"), LISTED) as smtp:
            await smtp.expect(220)
            await smtp.command("QUIT", 221)
        assert ("2.0.0.127.bl.test", "A") not in dns.queries
    finally:
        await runner.stop()


class Recorder:
    """A check that records the verdict it sees and adds nothing."""

    name = "recorder"

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    async def check(
        self, message: InboundMessage, verdict: Verdict
    ) -> CheckResult | None:
        self.verdicts.append(verdict)
        return None


# -- cost --------------------------------------------------------------------


async def test_two_zones_add_little_to_connection(dnsbl_server) -> None:
    """Measure EHLO-to-RCPT sessions with two zones against the local DNS server.

    Each client address is new, so every session makes two uncached
    queries. The figures are printed (pytest -s) and bounded loosely so the
    test fails only on a gross slowdown.
    """
    sessions = 20

    async def run_sessions(server: RunningServer, first_host: int) -> float:
        started = time.monotonic()
        for number in range(sessions):
            source = f"127.0.1.{first_host + number}"
            async with connect_from(server.port("smtp"), source) as smtp:
                await smtp.hello()
                await smtp.command("MAIL FROM:<sender@example.org>", 250)
                await smtp.command(f"RCPT TO:<{ALICE}>", 250)
                await smtp.command("QUIT", 221)
        return (time.monotonic() - started) / sessions

    async with dnsbl_server() as server:
        baseline = await run_sessions(server, 1)
    async with dnsbl_server(dnsbl_sites=["bl.test", "second.test"]) as server:
        with_zones = await run_sessions(server, 100)
        cached = await run_sessions(server, 100)
        assert server.dns.queries.count(("100.1.0.127.bl.test", "A")) == 1
    print(
        f"\nsession ms: no lists {baseline * 1000:.2f}, two zones uncached "
        f"{with_zones * 1000:.2f}, cached {cached * 1000:.2f}"
    )
    assert with_zones < baseline + 0.05
