"""Connection limits, bans and failed-login tracking over real loopback connections.

Clients bind their sockets to distinct loopback addresses (127.0.0.2,
127.0.0.3 ...) so that each one counts as a different client IP address.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest
from typer.testing import CliRunner

from garrison.cli.ban import ban_app
from garrison.config import ListenerSettings, Settings
from garrison.config.schema import LimitsSettings
from garrison.net.limits import ConnectionLimiter
from garrison.net.lockout import AuthLockout
from garrison.server.runner import Runner
from tests.conftest import ALICE, PASSWORD, TEST_LISTENERS

SUBMISSION = ListenerSettings(
    name="submission", protocol="submission", port=0, tls="starttls"
)
# The greeting each protocol sends to an admitted client, and the reply it
# sends instead to a rejected one.
GREETING = {"smtp": b"220 ", "imap": b"* OK ", "pop3": b"+OK "}
OVER_LIMIT = {"smtp": b"421 4.7.0 ", "imap": b"* BYE ", "pop3": b"-ERR [SYS/TEMP] "}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def limited_server(settings: Settings, **limits: object) -> AsyncIterator[Runner]:
    configured = settings.model_copy(
        update={
            "listeners": [*TEST_LISTENERS, SUBMISSION],
            "limits": settings.limits.model_copy(update=limits),
        }
    )
    runner = Runner(configured, run_queue=False)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 5)

    async def send(self, data: bytes) -> bytes:
        """Send a command and return the reply line, or b"" once the server closed."""
        try:
            self.writer.write(data)
            return await self.line()
        except ConnectionError:
            return b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def connect(runner: Runner, listener: str, ip: str) -> tuple[Client, bytes]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", runner.port(listener), local_addr=(ip, 0)
    )
    client = Client(reader, writer)
    return client, await client.line()


# -- connection limits -----------------------------------------------------


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3"])
async def test_concurrent_limit_per_ip(settings, protocol) -> None:
    async with limited_server(settings, max_connections_per_ip=2) as runner:
        first, greeting1 = await connect(runner, protocol, "127.0.0.2")
        second, greeting2 = await connect(runner, protocol, "127.0.0.2")
        third, rejected = await connect(runner, protocol, "127.0.0.2")
        other, other_greeting = await connect(runner, protocol, "127.0.0.3")

        assert greeting1.startswith(GREETING[protocol])
        assert greeting2.startswith(GREETING[protocol])
        assert rejected.startswith(OVER_LIMIT[protocol])
        assert b"blocked" not in rejected
        assert await third.line() == b"", "rejected connection stays open"
        assert other_greeting.startswith(GREETING[protocol])

        # A closed connection frees its slot.
        await first.close()
        await asyncio.sleep(0.2)
        again, greeting = await connect(runner, protocol, "127.0.0.2")
        assert greeting.startswith(GREETING[protocol])
        for client in (second, third, other, again):
            await client.close()


async def test_concurrent_limit_spans_listeners(settings) -> None:
    async with limited_server(settings, max_connections_per_ip=2) as runner:
        smtp, _ = await connect(runner, "smtp", "127.0.0.2")
        pop3, _ = await connect(runner, "pop3", "127.0.0.2")
        imap, reply = await connect(runner, "imap", "127.0.0.2")
        assert reply.startswith(OVER_LIMIT["imap"])
        for client in (smtp, pop3, imap):
            await client.close()


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3"])
async def test_connection_rate_per_ip(settings, protocol) -> None:
    async with limited_server(settings, connection_rate_per_ip=3) as runner:
        for _ in range(3):
            client, greeting = await connect(runner, protocol, "127.0.0.4")
            assert greeting.startswith(GREETING[protocol])
            await client.close()
        client, rejected = await connect(runner, protocol, "127.0.0.4")
        assert rejected.startswith(OVER_LIMIT[protocol])
        await client.close()
        other, greeting = await connect(runner, protocol, "127.0.0.5")
        assert greeting.startswith(GREETING[protocol])
        await other.close()


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3"])
async def test_connection_limit_per_listener(settings, protocol) -> None:
    async with limited_server(settings, max_connections_per_listener=2) as runner:
        first, _ = await connect(runner, protocol, "127.0.0.6")
        second, _ = await connect(runner, protocol, "127.0.0.7")
        third, rejected = await connect(runner, protocol, "127.0.0.8")
        assert rejected.startswith(OVER_LIMIT[protocol])
        # The limit is per listener: the submission listener still accepts.
        submission, greeting = await connect(runner, "submission", "127.0.0.8")
        assert greeting.startswith(b"220 ")
        for client in (first, second, third, submission):
            await client.close()


async def test_rejections_logged_once(settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.limits")
    async with limited_server(settings, connection_rate_per_ip=1) as runner:
        for _ in range(6):
            client, _ = await connect(runner, "smtp", "127.0.0.9")
            await client.close()
    lines = [r.getMessage() for r in caplog.records if "event=limit" in r.getMessage()]
    assert len(lines) == 1
    assert "reason=connection_rate_per_ip" in lines[0]
    assert "ip=127.0.0.9" in lines[0]


# -- stored bans -------------------------------------------------------------


async def test_stored_ban_rejects_client(settings) -> None:
    config = str(settings.server.data_dir / "garrison.toml")
    cli = CliRunner()
    added = cli.invoke(
        ban_app, ["add", "127.0.0.16/30", "--reason", "abuse", "-c", config]
    )
    assert added.exit_code == 0, added.output
    listed = cli.invoke(ban_app, ["list", "-c", config])
    assert "127.0.0.16/30" in listed.output
    assert "abuse" in listed.output

    async with limited_server(settings, ban_refresh_interval=0) as runner:
        for protocol in ("smtp", "imap", "pop3"):
            client, reply = await connect(runner, protocol, "127.0.0.17")
            assert reply.startswith(OVER_LIMIT[protocol]), protocol
            assert b"blocked" in reply, protocol
            await client.close()
        outside, greeting = await connect(runner, "smtp", "127.0.0.20")
        assert greeting.startswith(b"220 ")
        await outside.close()

        removed = cli.invoke(ban_app, ["remove", "127.0.0.16/30", "-c", config])
        assert removed.exit_code == 0, removed.output
        client, greeting = await connect(runner, "smtp", "127.0.0.17")
        assert greeting.startswith(b"220 ")
        await client.close()


def test_ban_cli_rejects_invalid_input(settings) -> None:
    config = str(settings.server.data_dir / "garrison.toml")
    cli = CliRunner()
    invalid = cli.invoke(ban_app, ["add", "not-an-address", "-c", config])
    assert invalid.exit_code == 1
    assert "invalid address or network" in invalid.output
    missing = cli.invoke(ban_app, ["remove", "192.0.2.1", "-c", config])
    assert missing.exit_code == 1
    assert "no ban for 192.0.2.1/32" in missing.output


# -- failed-login tracking -------------------------------------------------


def test_lockout_delay_doubles_and_caps() -> None:
    clock = FakeClock()
    limits = LimitsSettings(
        auth_failure_delay=1.0, max_auth_failure_delay=4.0, ban_after_failures=0
    )
    lockout = AuthLockout(limits, clock)
    delays = [lockout.record_failure("192.0.2.1", ALICE) for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    # The account's failures slow down a new address guessing the same name.
    assert lockout.record_failure("192.0.2.2", ALICE) == 4.0
    assert lockout.record_failure("192.0.2.2", "bob@example.test") == 2.0
    clock.now += limits.auth_failure_window + 1
    assert lockout.record_failure("192.0.2.1", ALICE) == 1.0


def test_lockout_bans_ip_not_account() -> None:
    clock = FakeClock()
    limits = LimitsSettings(ban_after_failures=3, ban_duration=60)
    lockout = AuthLockout(limits, clock)
    for _ in range(3):
        lockout.record_failure("192.0.2.1", ALICE)
    assert lockout.is_banned("192.0.2.1")
    assert not lockout.is_banned("192.0.2.2")
    clock.now += 61
    assert not lockout.is_banned("192.0.2.1")


def test_limiter_rate_window_slides() -> None:
    clock = FakeClock()
    limits = LimitsSettings(connection_rate_per_ip=2)
    limiter = ConnectionLimiter(limits, AuthLockout(limits, clock), clock=clock)
    for _ in range(2):
        admission = limiter.admit("192.0.2.1", "smtp")
        assert admission is not None
        admission.release()
    assert limiter.admit("192.0.2.1", "smtp") is None
    clock.now += 61
    assert limiter.admit("192.0.2.1", "smtp") is not None


async def imap_guess(runner: Runner, ip: str, password: str) -> list[bytes]:
    client, greeting = await connect(runner, "imap", ip)
    replies = [greeting]
    try:
        if greeting.startswith(b"* OK"):
            for number in range(3):
                reply = await client.send(
                    f"a{number} LOGIN {ALICE} {password}\r\n".encode()
                )
                replies.append(reply)
                if not reply.startswith(f"a{number} NO".encode()):
                    break
    finally:
        await client.close()
    return replies


async def pop3_guess(runner: Runner, ip: str, password: str) -> list[bytes]:
    client, greeting = await connect(runner, "pop3", ip)
    replies = [greeting]
    try:
        if greeting.startswith(b"+OK"):
            for _ in range(3):
                if not (await client.send(f"USER {ALICE}\r\n".encode())):
                    break
                reply = await client.send(f"PASS {password}\r\n".encode())
                replies.append(reply)
                if not reply.startswith(b"-ERR [AUTH]"):
                    break
    finally:
        await client.close()
    return replies


async def smtp_guess(runner: Runner, ip: str, password: str) -> list[bytes]:
    client, greeting = await connect(runner, "submission", ip)
    replies = [greeting]
    try:
        if greeting.startswith(b"220"):
            client.writer.write(b"EHLO client.example\r\n")
            while not (await client.line()).startswith(b"250 "):
                pass
            token = base64.b64encode(f"\0{ALICE}\0{password}".encode()).decode()
            for _ in range(3):
                reply = await client.send(f"AUTH PLAIN {token}\r\n".encode())
                replies.append(reply)
                if not reply.startswith(b"535"):
                    break
    finally:
        await client.close()
    return replies


GUESSERS: list[Callable[[Runner, str, str], object]] = [
    imap_guess,
    pop3_guess,
    smtp_guess,
]
LOGGED_IN = (b"a0 OK", b"a1 OK", b"a2 OK", b"+OK maildrop", b"235")


async def test_password_guessing_ends_in_bans(settings) -> None:
    attackers = [f"127.0.0.{host}" for host in range(30, 36)]
    async with limited_server(
        settings,
        connection_rate_per_ip=0,
        auth_failure_delay=0.002,
        max_auth_failure_delay=1.5,
        ban_after_failures=5,
    ) as runner:
        lockout = runner.services.limiter.lockout

        async def attack(ip: str) -> list[bytes]:
            replies: list[bytes] = []
            for attempt in range(50):
                guesser = GUESSERS[attempt % len(GUESSERS)]
                replies += await guesser(runner, ip, f"guess-{attempt}")
            return replies

        started = time.monotonic()
        results = await asyncio.gather(*(attack(ip) for ip in attackers))
        elapsed = time.monotonic() - started

        # 6 addresses x 50 connections, 3 guesses each when admitted.
        assert sum(len(replies) for replies in results) >= 300
        for ip, replies in zip(attackers, results, strict=True):
            assert not any(r.startswith(LOGGED_IN) for r in replies), ip
            assert lockout.is_banned(ip), ip
            # The ban stops guessing after ban_after_failures failures.
            assert lockout.failures(ip) <= 5, ip
            rejected = [r for r in replies if r.startswith(tuple(OVER_LIMIT.values()))]
            assert len(rejected) >= 40, ip
        assert elapsed < 30

        # The real user from an address without failures logs in at once,
        # although the account has many failures counted against it.
        started = time.monotonic()
        replies = await imap_guess(runner, "127.0.0.1", PASSWORD)
        assert replies[-1].startswith(b"a0 OK"), replies
        # The bound leaves room for the Argon2 check on a loaded machine but
        # stays below the 1.5 s delay a failed login gets now.
        assert time.monotonic() - started < 1.0

        # A wrong password from that address is slowed down by the account's
        # failures, up to max_auth_failure_delay.
        started = time.monotonic()
        client, _ = await connect(runner, "pop3", "127.0.0.1")
        await client.send(f"USER {ALICE}\r\n".encode())
        reply = await client.send(b"PASS wrong\r\n")
        assert reply.startswith(b"-ERR [AUTH]")
        assert time.monotonic() - started >= 1.5
        await client.close()
        assert not lockout.is_banned("127.0.0.1")


async def test_automatic_ban_listed_and_removable(settings) -> None:
    config = str(settings.server.data_dir / "garrison.toml")
    limits = settings.limits.model_copy(
        update={"ban_after_failures": 3, "ban_refresh_interval": 0}
    )
    limiter = ConnectionLimiter(limits, AuthLockout(limits), settings.db_path)
    for _ in range(3):
        limiter.lockout.record_failure("127.0.0.60", "alice@example.test")
    assert limiter.admit("127.0.0.60", "imap") is None

    cli = CliRunner()
    listed = ""
    for _ in range(50):
        listed = cli.invoke(ban_app, ["list", "-c", config]).output
        if "127.0.0.60/32" in listed:
            break
        await asyncio.sleep(0.05)
    assert "127.0.0.60/32" in listed
    assert "automatic: 3 failed logins" in listed

    removed = cli.invoke(ban_app, ["remove", "127.0.0.60", "-c", config])
    assert removed.exit_code == 0, removed.output
    await asyncio.sleep(0.01)
    admission = limiter.admit("127.0.0.60", "imap")
    assert admission is not None
    admission.release()
    # The failures were forgotten with the ban: one more does not ban again.
    limiter.lockout.record_failure("127.0.0.60", "alice@example.test")
    assert not limiter.lockout.is_banned("127.0.0.60")
