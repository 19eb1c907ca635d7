"""Local allow and block lists: entry syntax, storage, decisions, CLI and SMTP.

The SMTP tests change the lists with `garrison policy` (typer's CliRunner
on the test's config file) while the in-process server runs, and connect
from 127.0.0.2 by binding the client socket to that loopback address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from garrison.cli.policy import policy_app
from garrison.config import Settings
from garrison.config.schema import ReputationSettings
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.governance.policy import (
    PolicyCache,
    PolicyError,
    PolicyLists,
    parse_entry,
    parse_scope,
)
from garrison.server.runner import Runner
from tests.conftest import RunningServer
from tests.filters.test_dnsbl import ZONE, connect_from
from tests.queue.conftest import dns_server  # noqa: F401 - the fixture
from tests.smtpd.helpers import ALICE, BOB

MESSAGE = b"From: sender@example.org\r\nSubject: policy\r\n\r\nbody\r\n"

# -- entry and scope syntax ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "entry"),
    [
        ("192.0.2.7", "network", "192.0.2.7/32"),
        ("198.51.100.0/24", "network", "198.51.100.0/24"),
        ("2001:DB8::/32", "network", "2001:db8::/32"),
        ("2001:db8::1", "network", "2001:db8::1/128"),
        ("Spammer@Example.COM", "address", "spammer@example.com"),
        ("example.com.", "domain", "example.com"),
        ("@example.com", "domain", "example.com"),
        (".Example.com", "domain", ".example.com"),
        ("bücher.example", "domain", "xn--bcher-kva.example"),
    ],
)
def test_parse_entry_normalizes(text: str, kind: str, entry: str) -> None:
    assert parse_entry(text) == (kind, entry)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("192.0.2.1/24", "has host bits set"),
        ("300.1.2.3", "invalid address or network"),
        ("2001:db8::/129", "invalid address or network"),
        ("192.0.2", "invalid address or network"),
        ("localhost", "invalid domain"),
        ("exa mple.com", "invalid domain"),
        ("-bad.example", "invalid domain"),
        ("@", "invalid domain"),
        ("user@", "invalid domain"),
        ("<x>@example.com", "invalid sender address"),
        ("", "missing entry"),
    ],
)
def test_parse_entry_rejects_invalid(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_entry(text)


def test_parse_scope_levels() -> None:
    assert parse_scope("server") == ("server", "")
    assert parse_scope("domain:Example.ORG") == ("domain", "example.org")
    assert parse_scope("user:Alice@Example.org") == ("user", "alice@example.org")


@pytest.mark.parametrize("text", ["", "global", "domain:", "user:alice", "site:x.org"])
def test_parse_scope_rejects_invalid(text: str) -> None:
    with pytest.raises(PolicyError, match="invalid scope"):
        parse_scope(text)


# -- storage -----------------------------------------------------------------


@pytest.fixture
def lists(settings: Settings):
    opened = PolicyLists(settings.db_path)
    yield opened
    opened.close()


def test_add_list_remove_entries(lists: PolicyLists) -> None:
    server_entry = lists.add("block", "192.0.2.0/24", note="abuse")
    user_entry = lists.add("allow", "friend@example.org", f"user:{ALICE}")
    assert server_entry.scope == "server"
    assert user_entry.scope == f"user:{ALICE}"
    assert [entry.id for entry in lists.list()] == [server_entry.id, user_entry.id]
    assert [entry.entry for entry in lists.list(f"user:{ALICE}")] == [
        "friend@example.org"
    ]

    removed = lists.remove(str(server_entry.id))
    assert [entry.note for entry in removed] == ["abuse"]
    removed = lists.remove("Friend@Example.org")
    assert [entry.id for entry in removed] == [user_entry.id]
    assert lists.list() == []


def test_add_rejects_duplicate_and_unknown_scope(lists: PolicyLists) -> None:
    lists.add("block", "example.com")
    with pytest.raises(PolicyError, match="already in the block list of server"):
        lists.add("block", "Example.com")
    # The same entry may be in the allow list too; block wins when both match.
    lists.add("allow", "example.com")
    with pytest.raises(PolicyError, match="not a local domain"):
        lists.add("block", "example.com", "domain:elsewhere.test")
    with pytest.raises(PolicyError, match="not a local user"):
        lists.add("block", "example.com", "user:nobody@example.test")
    with pytest.raises(PolicyError, match="invalid action"):
        lists.add("deny", "example.com")


def test_remove_needs_scope_when_ambiguous(lists: PolicyLists) -> None:
    lists.add("block", "example.com")
    lists.add("block", "example.com", "domain:example.test")
    with pytest.raises(PolicyError, match="in several scopes"):
        lists.remove("example.com")
    removed = lists.remove("example.com", "domain:example.test")
    assert [entry.scope for entry in removed] == ["domain:example.test"]
    with pytest.raises(PolicyError, match="no policy entry matches"):
        lists.remove("example.com", "domain:example.test")


# -- decisions ---------------------------------------------------------------


def test_block_beats_allow_in_one_scope(lists: PolicyLists, settings: Settings) -> None:
    lists.add("allow", "192.0.2.0/24")
    lists.add("block", "spam.example")
    cache = PolicyCache(settings.db_path, 0)
    decision = cache.decide_sender("192.0.2.9", "x@spam.example")
    assert decision is not None
    assert decision.action == "block"
    assert decision.entry == "spam.example"
    assert cache.decide_sender("192.0.2.9", "x@ok.example").action == "allow"
    assert cache.decide_sender("198.51.100.1", "x@ok.example") is None


def test_specific_scope_beats_broader(lists: PolicyLists, settings: Settings) -> None:
    lists.add("block", "news.example", "domain:example.test")
    lists.add("allow", "news.example", f"user:{ALICE}")
    lists.add("allow", "news.example")
    cache = PolicyCache(settings.db_path, 0)
    alice = cache.decide_account(ALICE, "192.0.2.1", "list@news.example")
    bob = cache.decide_account(BOB, "192.0.2.1", "list@news.example")
    assert (alice.action, alice.scope) == ("allow", f"user:{ALICE}")
    assert (bob.action, bob.scope) == ("block", "domain:example.test")
    assert (
        cache.decide_account("carol@other.test", "192.0.2.1", "list@news.example").scope
        == "server"
    )


def test_dot_domain_matches_subdomains(lists: PolicyLists, settings: Settings) -> None:
    lists.add("block", ".example.com")
    lists.add("block", "exact.example")
    cache = PolicyCache(settings.db_path, 0)
    for sender in ("a@example.com", "a@mail.example.com", "a@A.B.Example.COM"):
        assert cache.decide_sender("192.0.2.1", sender) is not None, sender
    assert cache.decide_sender("192.0.2.1", "a@notexample.com") is None
    assert cache.decide_sender("192.0.2.1", "a@exact.example") is not None
    assert cache.decide_sender("192.0.2.1", "a@sub.exact.example") is None
    assert cache.decide_sender("192.0.2.1", "") is None


def test_unicode_sender_domain_matches(lists: PolicyLists, settings: Settings) -> None:
    lists.add("block", "bücher.example")
    cache = PolicyCache(settings.db_path, 0)
    assert cache.decide_sender("192.0.2.1", "a@Bücher.example") is not None
    assert cache.decide_sender("192.0.2.1", "a@xn--bcher-kva.example") is not None


def test_networks_match_ipv6_and_mapped(lists: PolicyLists, settings: Settings) -> None:
    lists.add("block", "2001:db8:1::/48")
    lists.add("block", "192.0.2.0/28")
    cache = PolicyCache(settings.db_path, 0)
    assert cache.decide_client("2001:db8:1:ff::5") is not None
    assert cache.decide_client("2001:db8:2::5") is None
    assert cache.decide_client("::ffff:192.0.2.15") is not None
    assert cache.decide_client("192.0.2.16") is None
    assert cache.decide_client("not-an-address") is None


def test_cache_reloads_after_interval(lists: PolicyLists, settings: Settings) -> None:
    cache = PolicyCache(settings.db_path, 0.2)
    assert cache.decide_client("192.0.2.1") is None
    lists.add("block", "192.0.2.1")
    assert cache.decide_client("192.0.2.1") is None
    time.sleep(0.25)
    assert cache.decide_client("192.0.2.1") is not None


def test_cache_sees_replaced_entry(lists: PolicyLists, settings: Settings) -> None:
    lists.add("block", "192.0.2.1")
    second = lists.add("block", "192.0.2.2")
    cache = PolicyCache(settings.db_path, 0)
    assert cache.decide_client("192.0.2.2") is not None
    # Same count and, once SQLite reuses the freed id, the same id sum.
    time.sleep(0.01)
    lists.remove(str(second.id))
    lists.add("block", "192.0.2.3")
    assert cache.decide_client("192.0.2.2") is None
    assert cache.decide_client("192.0.2.3") is not None


def test_network_prefixes_match(lists: PolicyLists, settings: Settings) -> None:
    lists.add("block", "0.0.0.0/0", "domain:example.test")
    lists.add("allow", "203.0.113.0/24", f"user:{ALICE}")
    lists.add("allow", "203.0.113.128/25", f"user:{ALICE}")
    cache = PolicyCache(settings.db_path, 0)
    assert cache.decide_account(ALICE, "203.0.113.200", "").entry in {
        "203.0.113.0/24",
        "203.0.113.128/25",
    }
    assert cache.decide_account(ALICE, "198.51.100.1", "").entry == "0.0.0.0/0"
    assert cache.decide_account(ALICE, "2001:db8::1", "") is None


# -- CLI ---------------------------------------------------------------------


def test_cli_add_list_remove(settings: Settings) -> None:
    config = str(settings.server.data_dir / "garrison.toml")
    cli = CliRunner()
    added = cli.invoke(
        policy_app, ["add", "block", "198.51.100.0/24", "--note", "abuse", "-c", config]
    )
    assert added.exit_code == 0, added.output
    assert "server\tblock\tnetwork\t198.51.100.0/24" in added.output
    added = cli.invoke(
        policy_app,
        ["add", "allow", ".example.org", "--scope", f"user:{ALICE}", "-c", config],
    )
    assert added.exit_code == 0, added.output

    listed = cli.invoke(policy_app, ["list", "-c", config])
    assert listed.exit_code == 0, listed.output
    assert "198.51.100.0/24" in listed.output
    assert "abuse" in listed.output
    assert listed.output.endswith("2 entries\n")
    scoped = cli.invoke(policy_app, ["list", "--scope", f"user:{ALICE}", "-c", config])
    assert ".example.org" in scoped.output
    assert "198.51.100.0/24" not in scoped.output

    removed = cli.invoke(policy_app, ["remove", "198.51.100.0/24", "-c", config])
    assert removed.exit_code == 0, removed.output
    assert "removed" in removed.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["add", "block", "192.0.2.1/24"], "has host bits set"),
        (["add", "block", "10.0.0.0/33"], "invalid address or network"),
        (["add", "deny", "192.0.2.1"], "invalid action"),
        (
            ["add", "block", "x.example", "--scope", "domain:nowhere.test"],
            "not a local domain",
        ),
        (["add", "block", "x.example", "--scope", "everyone"], "invalid scope"),
        (["list", "--scope", "user:"], "invalid scope"),
        (["remove", "42"], "no policy entry matches"),
    ],
)
def test_cli_rejects_invalid_input(
    settings: Settings, arguments: list[str], message: str
) -> None:
    config = str(settings.server.data_dir / "garrison.toml")
    result = CliRunner().invoke(policy_app, [*arguments, "-c", config])
    assert result.exit_code == 1
    assert message in result.output


# -- SMTP --------------------------------------------------------------------

ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def policy_server(settings: Settings, dns_server) -> ServerFactory:  # noqa: F811
    """Return a factory running the server with [reputation] options."""

    @asynccontextmanager
    async def run(**options: object) -> AsyncIterator[RunningServer]:
        options.setdefault("policy_refresh_interval", 0)
        dns = dns_server(ZONE)
        configured = settings.model_copy(
            update={
                "reputation": ReputationSettings(**options),
                "dns": settings.dns.model_copy(update={"nameservers": [dns.address]}),
            }
        )
        runner = Runner(configured, run_queue=False)
        await runner.start()
        try:
            yield RunningServer(runner, configured)
        finally:
            await runner.stop()

    return run


def policy(settings: Settings, *arguments: str) -> None:
    config = str(settings.server.data_dir / "garrison.toml")
    result = CliRunner().invoke(policy_app, [*arguments, "-c", config])
    assert result.exit_code == 0, result.output


async def test_blocked_network_rejected_at_connect(policy_server, settings) -> None:
    # The default refresh interval: the change must reach the running server.
    async with policy_server(policy_refresh_interval=2.0) as server:
        async with connect_from(server.port("smtp"), "127.0.0.2") as smtp:
            await smtp.expect(220)
            await smtp.command("QUIT", 221)

        policy(settings, "add", "block", "127.0.0.2/31")
        added = time.monotonic()
        while True:
            async with connect_from(server.port("smtp"), "127.0.0.2") as smtp:
                greeting = await smtp.read_reply()
                if greeting.code == 554:
                    break
                await smtp.command("QUIT", 221)
            assert time.monotonic() - added < 5, "block not applied within 5 s"
            # Polling faster would hit limits.connection_rate_per_ip.
            await asyncio.sleep(0.1)
        print(f"\nblock applied after {time.monotonic() - added:.2f} s")
        assert greeting.lines == [
            "5.7.1 Service unavailable; client [127.0.0.2] blocked by local policy"
        ]

        async with connect_from(server.port("smtp"), "127.0.0.2") as smtp:
            await smtp.expect(554, "5.7.1")
            await smtp.command("EHLO client.example", 503, "5.5.1")
            await smtp.command("QUIT", 221)
        async with connect_from(server.port("smtp"), "127.0.0.4") as smtp:
            await smtp.expect(220)
            await smtp.command("QUIT", 221)


async def test_server_allow_exempts_from_dnsbl(policy_server, settings) -> None:
    policy(settings, "add", "allow", "127.0.0.2")
    options = {"dnsbl_sites": ["bl.test"], "dnsbl_reject_at": "connect"}
    async with policy_server(**options) as server:
        async with connect_from(server.port("smtp"), "127.0.0.2") as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command("QUIT", 221)


async def test_blocked_sender_rejected_at_mail(policy_server, settings) -> None:
    policy(settings, "add", "block", "spammer@example.org")
    policy(settings, "add", "block", ".bulk.example")
    async with policy_server() as server:
        async with connect_from(server.port("smtp"), "127.0.0.1") as smtp:
            await smtp.hello()
            reply = await smtp.command("MAIL FROM:<Spammer@example.org>", 550, "5.7.1")
            assert "<Spammer@example.org> blocked by local policy" in reply.text
            await smtp.command("MAIL FROM:<news@mx.bulk.example>", 550, "5.7.1")
            await smtp.command("MAIL FROM:<friend@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command("QUIT", 221)


async def test_user_block_rejects_only_that_recipient(policy_server, settings) -> None:
    policy(settings, "add", "block", "example.org", "--scope", f"user:{ALICE}")
    async with policy_server() as server:
        async with connect_from(server.port("smtp"), "127.0.0.1") as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            reply = await smtp.command(f"RCPT TO:<{ALICE}>", 550, "5.7.1")
            assert reply.lines == [
                f"5.7.1 Recipient <{ALICE}> does not accept mail from this sender"
            ]
            await smtp.command(f"RCPT TO:<{BOB}>", 250)
            await smtp.command("DATA", 354)
            await smtp.send(MESSAGE + b".\r\n")
            await smtp.expect(250)
            await smtp.command("QUIT", 221)
        assert len(mailbox(server, BOB, "INBOX")) == 1
        assert mailbox(server, ALICE, "INBOX") == []


async def test_user_allow_overrides_domain_block(policy_server, settings) -> None:
    policy(settings, "add", "block", "example.org", "--scope", "domain:example.test")
    policy(settings, "add", "allow", "sender@example.org", "--scope", f"user:{BOB}")
    async with policy_server() as server:
        async with connect_from(server.port("smtp"), "127.0.0.1") as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 550, "5.7.1")
            await smtp.command(f"RCPT TO:<{BOB}>", 250)
            await smtp.command("QUIT", 221)


async def test_user_allow_skips_dnsbl_rejection(policy_server, settings) -> None:
    policy(settings, "add", "allow", "sender@example.org", "--scope", f"user:{BOB}")
    async with policy_server(dnsbl_sites=["bl.test"]) as server:
        async with connect_from(server.port("smtp"), "127.0.0.2") as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            reply = await smtp.command(f"RCPT TO:<{ALICE}>", 554, "5.7.1")
            assert "blocked using bl.test" in reply.text
            await smtp.command(f"RCPT TO:<{BOB}>", 250)
            await smtp.command("QUIT", 221)


@dataclass
class JunkEverything:
    """A spam check stand-in that files every copy into Junk.

    It replaces a classifier so that the test does not depend on how
    a real one scores this message; the allow list must still win.
    """

    name: str = "junk-everything"

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        return CheckResult(self.name, junk=True)


async def test_user_allow_keeps_mail_out_of_junk(policy_server, settings) -> None:
    policy(settings, "add", "allow", "example.org", "--scope", f"user:{ALICE}")
    async with policy_server() as server:
        checks = server.runner.services.delivery.checks.checks
        # The reputation check runs first whenever other checks run.
        assert checks and checks[0].name == "reputation"
        checks.append(JunkEverything())
        async with connect_from(server.port("smtp"), "127.0.0.1") as smtp:
            await smtp.hello()
            await smtp.command("MAIL FROM:<sender@example.org>", 250)
            await smtp.command(f"RCPT TO:<{ALICE}>", 250)
            await smtp.command(f"RCPT TO:<{BOB}>", 250)
            await smtp.command("DATA", 354)
            await smtp.send(MESSAGE + b".\r\n")
            await smtp.expect(250)
            await smtp.command("QUIT", 221)
        assert len(mailbox(server, ALICE, "INBOX")) == 1
        assert mailbox(server, ALICE, "Junk") == []
        assert mailbox(server, BOB, "INBOX") == []
        assert len(mailbox(server, BOB, "Junk")) == 1


def mailbox(server: RunningServer, address: str, name: str) -> list[bytes]:
    account = server.directory.resolve_recipient(address).accounts[0]
    found = server.store.get_mailbox(account.id, name)
    assert found is not None, name
    return [
        server.store.blobs.read(record.blob_id)
        for record in server.store.messages(found.id)
    ]
