"""Helpers for the sender authentication tests: DNS zone, keys, server, SMTP.

- `SENDER_ZONE` publishes SPF and DMARC records for the test sender
  domains; tests add DKIM keys with `publish_key`.
- `auth_server(zone, **options)` (fixture) starts the test DNS server with
  the zone, then the in-process server with `[authentication]` enabled,
  the given options, and DNS pointed at that server. Both stop at the end;
  the server's `dns` attribute is the DNS server, with its query log.
- `send(server, message, mail_from=...)` sends one message to alice over
  the MX listener from 127.0.0.1 and returns the DATA reply.
- `serving(zone)` runs a DNS server for a module-scoped fixture, and
  `resolver_settings(dns)` returns settings whose DNS is that server.
  Stopping a DNS server takes about a second, so tests that only need
  lookups share one per module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from garrison.config import Settings
from garrison.config.schema import AuthenticationSettings, DNSSettings
from garrison.dkim.keys import SigningKey, dns_record
from garrison.dkim.signer import sign_message
from garrison.server.runner import Runner
from tests.conftest import RunningServer
from tests.queue.dnsserver import DNSServer, Zone
from tests.smtpd.dialogue import Dialogue, ServerReply
from tests.smtpd.helpers import ALICE

# A 1024-bit key is the smallest a verifier accepts (RFC 8301 §3.2), and
# the fastest to generate.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
RSA_PEM = RSA_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
)

SENDER_ZONE: Zone = {
    # Lists 127.0.0.1, so mail from the test client passes.
    ("pass.example", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
    ("_dmarc.pass.example", "TXT"): ['"v=DMARC1; p=reject"'],
    # Does not list 127.0.0.1.
    ("fail.example", "TXT"): ['"v=spf1 ip4:192.0.2.1 -all"'],
    ("softfail.example", "TXT"): ['"v=spf1 ip4:192.0.2.1 ~all"'],
    ("reject.example", "TXT"): ['"v=spf1 ip4:192.0.2.1 -all"'],
    ("_dmarc.reject.example", "TXT"): ['"v=DMARC1; p=reject"'],
    ("quarantine.example", "TXT"): ['"v=spf1 ip4:192.0.2.1 -all"'],
    ("_dmarc.quarantine.example", "TXT"): ['"v=DMARC1; p=quarantine"'],
    ("relaxed.example", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
    ("_dmarc.relaxed.example", "TXT"): ['"v=DMARC1; p=reject; sp=quarantine"'],
    ("mail.relaxed.example", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
    ("list.example", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
}

ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


def publish_key(zone: Zone, key: SigningKey) -> None:
    """Add the TXT record of `key` to the zone, split into 255-octet strings."""
    name, value = dns_record(key)
    zone[(name, "TXT")] = [
        " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    ]


def dkim_sign(key: SigningKey, message: bytes) -> bytes:
    """Return the message with a DKIM-Signature from Garrison's own signer."""
    header, _, body = message.partition(b"\r\n\r\n")
    field = sign_message(key, header + b"\r\n", [body])
    return field + message


def message_from(
    author: str, subject: str = "test", body: bytes = b"Hello.\r\n"
) -> bytes:
    return (
        f"From: {author}\r\n"
        f"To: {ALICE}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n"
        "\r\n"
    ).encode() + body


def with_dns(settings: Settings, dns: DNSServer, **options: object) -> Settings:
    """Return settings with DNS on the test server and the checks enabled."""
    authentication = AuthenticationSettings(enabled=True, **options)
    dns_settings = settings.dns.model_copy(
        update={"nameservers": [dns.address], "timeout": 3.0}
    )
    return settings.model_copy(
        update={"authentication": authentication, "dns": dns_settings}
    )


def serving(zone: Zone, servfail: set[str] | None = None) -> Iterator[DNSServer]:
    """Run a DNS server with `zone` until the generator is closed."""
    server = DNSServer(zone, servfail).start()
    try:
        yield server
    finally:
        server.stop()


def resolver_settings(dns: DNSServer) -> Settings:
    """Return default settings with DNS on the test server."""
    return Settings(dns=DNSSettings(nameservers=[dns.address], timeout=3.0))


@pytest.fixture
def auth_server(
    settings: Settings, dns_server: Callable[..., DNSServer]
) -> ServerFactory:
    @asynccontextmanager
    async def run(
        zone: Zone | None = None, **options: object
    ) -> AsyncIterator[RunningServer]:
        dns = dns_server(SENDER_ZONE if zone is None else zone)
        configured = with_dns(settings, dns, **options)
        runner = Runner(configured)
        await runner.start()
        try:
            running = RunningServer(runner, configured)
            running.dns = dns  # type: ignore[attr-defined]
            yield running
        finally:
            await runner.stop()

    return run


async def send(
    server: RunningServer,
    message: bytes,
    mail_from: str = "sender@pass.example",
    recipients: tuple[str, ...] = (ALICE,),
    helo: str = "client.example",
) -> ServerReply:
    """Send one message over the MX listener; return the DATA reply."""
    async with Dialogue.connect(server.port("smtp")) as smtp:
        await smtp.hello(helo)
        await smtp.command(f"MAIL FROM:<{mail_from}>", 250)
        for recipient in recipients:
            await smtp.command(f"RCPT TO:<{recipient}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(message + b".\r\n")
        reply = await smtp.read_reply()
        await smtp.command("QUIT", 221)
    return reply


def mailbox(server: RunningServer, name: str, address: str = ALICE) -> list[bytes]:
    """Return the messages in one of the account's mailboxes, oldest first."""
    account = server.directory.resolve_recipient(address).accounts[0]
    found = server.store.get_mailbox(account.id, name)
    if found is None:
        return []
    return [
        server.store.blobs.read(record.blob_id)
        for record in server.store.messages(found.id)
    ]


def header_of(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[0] + b"\r\n"
