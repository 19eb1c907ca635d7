"""Fixtures for submission tests: servers with submission listeners, AUTH helpers.

`start_server(listeners, **settings_sections)` starts an in-process server
on a private copy of the test data directory and stops it at teardown.
Failed logins are not delayed, so the tests stay fast. Plaintext AUTH from
loopback is off unless a test turns it on, because every test client
connects from 127.0.0.1 and would otherwise be exempt from the TLS rule.

`RecordingQueue` stands in for the outbound queue, which is not part of
this tree yet: it records what the delivery pipeline hands over for remote
recipients, so relay tests can check what would leave the server.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from garrison.config import ListenerSettings, Settings
from garrison.delivery import Envelope
from garrison.server.runner import Runner
from garrison.store import BlobRef
from tests.conftest import ALICE, PASSWORD, RunningServer
from tests.smtpd.dialogue import Dialogue, ServerReply

SUBMISSION_LISTENERS = [
    ListenerSettings(name="submission", protocol="submission", port=0, tls="starttls"),
    ListenerSettings(name="submissions", protocol="submission", port=0, tls="implicit"),
    ListenerSettings(name="smtp", protocol="smtp", port=0, tls="starttls"),
]


@dataclass
class RecordingQueue:
    """Records each hand-off to the outbound queue and returns a fake queue id."""

    store: Any
    handed_over: list[tuple[Envelope, bytes]] = field(default_factory=list)

    async def enqueue(self, envelope: Envelope, blob_ref: BlobRef) -> str:
        self.handed_over.append((envelope, self.store.blobs.read(blob_ref.blob_id)))
        return f"OUT{len(self.handed_over)}"


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(settings: Settings) -> AsyncIterator[StartServer]:
    runners: list[Runner] = []

    async def start(
        listeners: list[ListenerSettings] | None = None,
        *,
        plaintext_auth_from_loopback: bool = False,
        outbound: bool = True,
        **sections: Any,
    ) -> RunningServer:
        tls = settings.tls.model_copy(
            update={"allow_plaintext_auth_from_loopback": plaintext_auth_from_loopback}
        )
        chosen = settings.model_copy(
            update={
                "listeners": listeners or SUBMISSION_LISTENERS,
                "tls": tls,
                **sections,
            }
        )
        runner = Runner(chosen)
        await runner.start()
        runners.append(runner)
        for _, _, protocol in runner.servers:
            if hasattr(protocol, "auth_failure_delay"):
                protocol.auth_failure_delay = 0.0
        server = RunningServer(runner, chosen)
        if outbound:
            server.services.delivery.outbound = RecordingQueue(server.store)
        return server

    try:
        yield start
    finally:
        for runner in runners:
            await runner.stop()


@pytest.fixture
async def submission_server(start_server: StartServer) -> RunningServer:
    return await start_server()


def plain_response(
    user: str = ALICE, password: str = PASSWORD, authzid: str = ""
) -> str:
    """Return the base64 PLAIN initial response (RFC 4616 §2)."""
    message = f"{authzid}\0{user}\0{password}".encode()
    return base64.b64encode(message).decode("ascii")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


@asynccontextmanager
async def logged_in(
    server: RunningServer, port_name: str = "submissions", user: str = ALICE
) -> AsyncIterator[Dialogue]:
    """Yield an implicit-TLS dialogue that has sent EHLO and logged in as `user`."""
    async with Dialogue.connect(
        server.port(port_name), tls=server.tls_client_context()
    ) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {plain_response(user)}", 235)
        yield smtp


async def ask(smtp: Dialogue, line: str) -> ServerReply:
    """Send one command line and return the reply, whatever its code."""
    await smtp.send(line.encode("utf-8") + b"\r\n")
    return await smtp.read_reply()


async def send_message(
    smtp: Dialogue, sender: str, recipients: list[str], content: bytes
) -> ServerReply:
    """Run one transaction and return the first reply that is not positive.

    Returns the final reply after the data when every step succeeded.
    `content` is the message without the final dot line.
    """
    reply = await ask(smtp, f"MAIL FROM:<{sender}>")
    if reply.code != 250:
        return reply
    for recipient in recipients:
        reply = await ask(smtp, f"RCPT TO:<{recipient}>")
        if reply.code != 250:
            return reply
    reply = await ask(smtp, "DATA")
    if reply.code != 354:
        return reply
    await smtp.send(content + b".\r\n")
    return await smtp.read_reply()
