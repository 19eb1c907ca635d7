"""A scripted IMAP dialogue over a real connection, for the IMAP tests.

`Dialogue.command("LOGIN alice pw")` sends a tagged command and returns the
untagged responses and the tagged status; `expect=` asserts the status.
Responses with literals are returned with the literal bytes inline, so a
FETCH response is one bytes object.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field

import pytest

from garrison.config import ListenerSettings
from garrison.imap.server import IMAPServer
from tests.conftest import ALICE, BOB, PASSWORD  # noqa: F401

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


@dataclass
class Reply:
    status: str
    text: bytes
    untagged: list[bytes] = field(default_factory=list)

    def lines(self, prefix: bytes) -> list[bytes]:
        """Return the untagged responses that start with `prefix` (after "* ")."""
        return [
            line for line in self.untagged if line.upper().startswith(prefix.upper())
        ]


class Dialogue:
    """One client connection with numbered tags."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.counter = 0
        self.greeting = b""

    @classmethod
    async def open(
        cls, port: int, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> Dialogue:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        dialogue = cls(reader, writer)
        dialogue.greeting = await dialogue.read_response()
        return dialogue

    async def read_response(self, timeout: float = 10) -> bytes:
        """Read one response line with any literals inline; CRLF removed."""
        out = bytearray()
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise ConnectionError(
                    f"connection closed; partial response {bytes(out)!r}"
                )
            out += line
            match = _LITERAL.search(line)
            if not match:
                return bytes(out).rstrip(b"\r\n")
            out += await asyncio.wait_for(
                self.reader.readexactly(int(match.group(1))), timeout
            )

    def next_tag(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def collect(self, tag: str, timeout: float = 10) -> Reply:
        """Read responses until the tagged status of `tag`."""
        untagged = []
        prefix = tag.encode() + b" "
        while True:
            line = await self.read_response(timeout)
            if line.startswith(prefix):
                status, _, text = line[len(prefix) :].partition(b" ")
                return Reply(status.decode(), text, untagged)
            if line.startswith(b"* "):
                untagged.append(line[2:])
            elif line.startswith(b"+"):
                raise AssertionError(f"unexpected continuation request {line!r}")
            else:
                raise AssertionError(f"unexpected response line {line!r}")

    async def command(self, text: bytes | str, expect: str | None = "OK") -> Reply:
        tag = self.next_tag()
        if isinstance(text, str):
            text = text.encode()
        await self.send(tag.encode() + b" " + text + b"\r\n")
        reply = await self.collect(tag)
        if expect is not None:
            assert reply.status == expect, (text, reply)
        return reply

    async def login(self, user: str = ALICE, password: str = PASSWORD) -> Reply:
        return await self.command(f'LOGIN {user} "{password}"')

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


class IMAPTestServer:
    """IMAP listeners (STARTTLS and implicit TLS) on ephemeral loopback ports."""

    def __init__(self, services) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.store
        self.directory = services.directory
        self.protocols: dict[str, IMAPServer] = {}
        self.listeners: dict[str, asyncio.Server] = {}

    async def start(self, **settings_overrides) -> None:
        settings = self.settings
        for section, values in settings_overrides.items():
            updated = getattr(settings, section).model_copy(update=values)
            settings = settings.model_copy(update={section: updated})
        self.settings = settings
        for name, tls in (("imap", "starttls"), ("imaps", "implicit")):
            listener = ListenerSettings(
                name=name, protocol="imap", address="127.0.0.1", port=0, tls=tls
            )
            protocol = IMAPServer(
                settings,
                listener,
                self.services.tls_context,
                directory=self.directory,
                store=self.store,
            )
            server = await asyncio.start_server(
                protocol.handle,
                "127.0.0.1",
                0,
                ssl=self.services.tls_context if tls == "implicit" else None,
            )
            self.protocols[name] = protocol
            self.listeners[name] = server

    async def stop(self) -> None:
        for server in self.listeners.values():
            server.close()
        for protocol in self.protocols.values():
            await protocol.shutdown()
        for server in self.listeners.values():
            await server.wait_closed()

    def port(self, name: str) -> int:
        return int(self.listeners[name].sockets[0].getsockname()[1])

    @property
    def ca_file(self):
        return self.settings.tls.cert_file

    def tls_client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False
        return context


@pytest.fixture
async def imap_server(services):
    """IMAP listeners over the real store and directory of `services`."""
    server = IMAPTestServer(services)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def second(imap_server):
    """A second session of alice's, logged in on the plain IMAP port."""
    dialogue = await Dialogue.open(imap_server.port("imap"))
    await dialogue.login()
    try:
        yield dialogue
    finally:
        await dialogue.close()


@pytest.fixture
async def imap(imap_server):
    """A logged-out dialogue on the plain IMAP port (over loopback)."""
    dialogue = await Dialogue.open(imap_server.port("imap"))
    try:
        yield dialogue
    finally:
        await dialogue.close()


@pytest.fixture
async def alice(imap):
    """A dialogue logged in as alice."""
    await imap.login()
    return imap


async def deliver(server, account: str, data: bytes) -> int:
    """Append a message to the INBOX of `account` through the store; return its UID."""
    account_record = server.directory.get_account(account)
    assert account_record is not None
    mailbox = server.store.get_mailbox(account_record.id, "INBOX")
    assert mailbox is not None
    _, uid = await server.store.append(mailbox.id, data)
    return uid


def make_message(
    subject: str = "Hello",
    body: str = "Body text\r\n",
    sender: str = "bob@example.test",
) -> bytes:
    return (
        f"From: Bob <{sender}>\r\n"
        f"To: Alice <alice@example.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <{abs(hash(subject + body))}@example.test>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"{body}"
    ).encode()
