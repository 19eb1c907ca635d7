"""Relay control: every combination of relay modes and client states.

The invariant under test: a client that has not authenticated and is not
in `relay_networks` never gets a remote recipient accepted, whatever the
listener's relay modes. The other cases check that each mode grants
exactly what it says. Clients reach the listener from 127.0.0.1 (outside
the configured network) or 127.0.0.2 (inside it); both are loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from dataclasses import dataclass

import pytest

from garrison.config import ListenerSettings
from tests.conftest import ALICE, BOB
from tests.smtpd.dialogue import Dialogue
from tests.submission.conftest import ask, plain_response

REMOTE = "someone@remote.example"
INSIDE_IP = "127.0.0.2"
MODES = ("networks", "auth", "auth_own_sender")
MODE_SETS = [
    list(combo) for size in range(4) for combo in itertools.combinations(MODES, size)
]


@dataclass(frozen=True)
class ClientState:
    name: str
    source_ip: str
    login: str | None
    sender: str


CLIENT_STATES = [
    ClientState("unauthenticated outside", "127.0.0.1", None, ALICE),
    ClientState("unauthenticated outside, remote sender", "127.0.0.1", None, REMOTE),
    ClientState("unauthenticated inside", INSIDE_IP, None, ALICE),
    ClientState("authenticated, own sender", "127.0.0.1", ALICE, ALICE),
    ClientState(
        "authenticated, alias sender", "127.0.0.1", ALICE, "sales@example.test"
    ),
    ClientState("authenticated, other sender", "127.0.0.1", ALICE, BOB),
]


def expected_relay(modes: list[str], state: ClientState) -> bool:
    if "networks" in modes and state.source_ip == INSIDE_IP:
        return True
    if state.login is None:
        return False
    if "auth" in modes:
        return True
    return "auth_own_sender" in modes and state.sender == state.login


async def remote_rcpt_code(
    port: int, context: ssl.SSLContext, state: ClientState
) -> tuple[int, int]:
    """Return (MAIL code, RCPT code for a remote address); RCPT is 0 if MAIL failed."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(state.source_ip, 0)
    )
    smtp = Dialogue(reader, writer)
    try:
        await smtp.hello()
        await smtp.starttls(context)
        await smtp.command("EHLO client.example", 250)
        if state.login is not None:
            await smtp.command(f"AUTH PLAIN {plain_response(state.login)}", 235)
        mail = await ask(smtp, f"MAIL FROM:<{state.sender}>")
        if mail.code != 250:
            return mail.code, 0
        rcpt = await ask(smtp, f"RCPT TO:<{REMOTE}>")
        return mail.code, rcpt.code
    finally:
        writer.close()


@pytest.mark.parametrize("protocol", ["smtp", "submission"])
@pytest.mark.parametrize(
    "modes", MODE_SETS, ids=lambda modes: "+".join(modes) or "closed"
)
@pytest.mark.parametrize(
    "check_sender", [True, False], ids=["sender checked", "sender free"]
)
async def test_no_open_relay(start_server, protocol, modes, check_sender) -> None:
    listener = ListenerSettings(
        name="relay",
        protocol=protocol,
        port=0,
        address="127.0.0.1",
        auth=True,
        relay=modes,
        relay_networks=["127.0.0.2/32"] if "networks" in modes else [],
        check_sender=check_sender,
    )
    server = await start_server([listener])
    server.directory.add_alias("sales@example.test", ALICE)
    context = server.tls_client_context()

    failures = []
    for state in CLIENT_STATES:
        mail, rcpt = await remote_rcpt_code(server.port("relay"), context, state)
        relayed = rcpt == 250
        if state.login is None and state.source_ip != INSIDE_IP and relayed:
            failures.append(f"OPEN RELAY: {state.name}")
        if mail != 250:
            # Only submission's AUTH requirement and the sender check may stop MAIL.
            allowed = (protocol == "submission" and state.login is None) or (
                check_sender and state.login is not None and state.sender == BOB
            )
            if not allowed:
                failures.append(f"{state.name}: MAIL got {mail}")
            continue
        if relayed != expected_relay(modes, state):
            failures.append(f"{state.name}: RCPT got {rcpt}")
        if not relayed and rcpt != 554:
            failures.append(f"{state.name}: refused relay got {rcpt}, expected 554")
    assert failures == []


async def test_relay_hands_remote_recipients_to_queue(submission_server) -> None:
    queue = submission_server.services.delivery.outbound
    async with Dialogue.connect(
        submission_server.port("submissions"),
        tls=submission_server.tls_client_context(),
    ) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)
        await smtp.command(f"MAIL FROM:<{ALICE}>", 250)
        await smtp.command(f"RCPT TO:<{REMOTE}>", 250)
        await smtp.command(f"RCPT TO:<{BOB}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(b"From: alice@example.test\r\nSubject: out\r\n\r\nhi\r\n.\r\n")
        await smtp.expect(250)

    assert len(queue.handed_over) == 1
    envelope, content = queue.handed_over[0]
    assert [rcpt.address for rcpt in envelope.recipients] == [REMOTE]
    assert envelope.mail_from == ALICE
    assert envelope.authenticated_as == ALICE
    assert content.endswith(b"Subject: out\r\n\r\nhi\r\n")


async def test_relay_without_queue_is_deferred(start_server) -> None:
    server = await start_server(outbound=False)
    server.services.delivery.outbound = None
    async with Dialogue.connect(
        server.port("submissions"), tls=server.tls_client_context()
    ) as smtp:
        await smtp.hello()
        await smtp.command(f"AUTH PLAIN {plain_response()}", 235)
        await smtp.command(f"MAIL FROM:<{ALICE}>", 250)
        await smtp.command(f"RCPT TO:<{REMOTE}>", 451, "4.3.0")


@pytest.mark.parametrize(
    "recipient",
    [
        "someone%remote.example@example.test",
        "someone@remote.example@example.test",
        "@example.test:someone@remote.example",
        "someone@[127.0.0.1]",
    ],
    ids=["percent hack", "double at", "source route", "address literal"],
)
async def test_mx_refuses_relay_tricks(submission_server, recipient) -> None:
    async with Dialogue.connect(submission_server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<someone@remote.example>", 250)
        reply = await ask(smtp, f"RCPT TO:<{recipient}>")
        assert reply.code >= 500, reply.text
    assert submission_server.services.delivery.outbound.handed_over == []
