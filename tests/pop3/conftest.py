"""Fixtures: a POP3Server on an ephemeral 127.0.0.1 port over real services.

`pop3` starts a server with the default settings (STLS offered, plaintext
login allowed from loopback). `start_pop3` starts one with changed settings
or listener, for tests of autologout, TLS policy and implicit TLS. Every
server is shut down at teardown.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from garrison.config import ListenerSettings, Settings
from garrison.pop3.server import POP3Server
from garrison.server.services import Services
from tests.conftest import ALICE, BOB, PASSWORD
from tests.pop3.dialogue import POP3Dialogue

__all__ = ["ALICE", "BOB", "PASSWORD"]


@dataclass
class RunningPOP3:
    """A POP3 server under test and the services behind it."""

    protocol: POP3Server
    server: asyncio.Server
    services: Services

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def connect(self, tls: ssl.SSLContext | None = None) -> POP3Dialogue:
        """Connect and check the greeting."""
        client = await POP3Dialogue.connect(self.port, tls)
        greeting = await client.read_line()
        assert greeting.startswith("+OK"), greeting
        return client

    async def login(self, user: str = ALICE) -> POP3Dialogue:
        client = await self.connect()
        await client.log_in(user, PASSWORD)
        return client

    def inbox_id(self, address: str = ALICE) -> int:
        account = self.services.directory.get_account(address)
        assert account is not None
        mailbox = self.services.store.get_mailbox(account.id, "INBOX")
        assert mailbox is not None
        return mailbox.id

    async def deliver(self, data: bytes, address: str = ALICE, **kwargs: Any) -> int:
        """Append a message to the INBOX; return its UID."""
        _, uid = await self.services.store.append(
            self.inbox_id(address), data, **kwargs
        )
        return uid

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.services.settings.tls.cert_file)
        )
        context.check_hostname = False
        return context


StartPOP3 = Callable[..., Awaitable[RunningPOP3]]


@pytest.fixture
async def start_pop3(services: Services) -> AsyncIterator[StartPOP3]:
    started: list[RunningPOP3] = []

    async def start(
        settings: Settings | None = None,
        tls: str = "starttls",
        **server_options: Any,
    ) -> RunningPOP3:
        listener = ListenerSettings(name="pop3-test", protocol="pop3", port=0, tls=tls)
        server_options.setdefault("auth_failure_delay", 0.0)
        protocol = POP3Server(
            settings or services.settings,
            listener,
            services.tls_context,
            directory=services.directory,
            store=services.store,
            **server_options,
        )
        server = await asyncio.start_server(
            protocol.handle,
            "127.0.0.1",
            0,
            ssl=services.tls_context if tls == "implicit" else None,
        )
        running = RunningPOP3(protocol, server, services)
        started.append(running)
        return running

    yield start

    for running in started:
        running.server.close()
        await running.protocol.shutdown(grace=2.0)
        await running.server.wait_closed()


@pytest.fixture
async def pop3(start_pop3: StartPOP3) -> RunningPOP3:
    return await start_pop3()


def message(subject: str, body: str = "Hello.\r\n") -> bytes:
    """Return a small RFC 5322 message with CRLF line endings."""
    return (
        f"From: bob@example.test\r\n"
        f"To: alice@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n"
        f"\r\n"
        f"{body}"
    ).encode()
