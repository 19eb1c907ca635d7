"""The SMTP client against Garrison's own MX listener and smtp-sink."""

from __future__ import annotations

import io

import pytest

from garrison.queue.client import MailRequest, SMTPClient, SMTPClientError
from garrison.queue.scheduler import client_tls_context
from garrison.smtp.replies import Reply
from tests.conftest import ALICE, BOB

MESSAGE = b"Subject: client test\r\n\r\n.dot line\r\nbody\r\n"


def request(recipients: list[str], content: bytes = MESSAGE) -> MailRequest:
    return MailRequest(
        sender="sender@remote.test",
        recipients=recipients,
        size=len(content),
        open_content=lambda: io.BytesIO(content),
    )


def inbox_contents(server, address: str) -> list[bytes]:
    account = server.directory.get_account(address)
    mailbox = server.store.get_mailbox(account.id, "INBOX")
    return [
        server.store.blobs.read(r.blob_id) for r in server.store.messages(mailbox.id)
    ]


async def test_chunking_pipelining_and_starttls(garrison_server) -> None:
    client = SMTPClient("client.remote.test", client_tls_context(verify=False))
    await client.connect("127.0.0.1", garrison_server.port("smtp"), 5.0)
    accepted: list[tuple[list[int], Reply]] = []

    async def on_accepted(indexes: list[int], reply: Reply) -> None:
        accepted.append((indexes, reply))

    try:
        assert client.tls
        assert "CHUNKING" in client.extensions
        assert "PIPELINING" in client.extensions
        assert "STARTTLS" not in client.extensions, "EHLO after TLS hides STARTTLS"
        replies = await client.send(
            request([ALICE, "nobody@example.test", BOB]), on_accepted
        )
    finally:
        await client.close()

    assert [r.code for r in replies] == [250, 550, 250]
    assert replies[1].enhanced == "5.1.1"
    assert accepted[0][0] == [0, 2]
    for address in (ALICE, BOB):
        stored = inbox_contents(garrison_server, address)
        assert len(stored) == 1
        # BDAT content is not dot-stuffed, so the dot arrives as sent.
        assert stored[0].endswith(b"\r\n\r\n.dot line\r\nbody\r\n")


async def test_data_without_pipelining_or_ehlo(smtp_sink) -> None:
    # -e: smtp-sink rejects EHLO, so the client falls back to HELO.
    sink = smtp_sink("-e")
    client = SMTPClient("client.example.test", None)
    await client.connect("127.0.0.1", sink.port, 5.0)

    async def on_accepted(indexes: list[int], reply: Reply) -> None:
        assert indexes == [0]

    try:
        assert client.extensions == {}
        replies = await client.send(request(["a@remote.test"]), on_accepted)
    finally:
        await client.close()
    assert [r.code for r in replies] == [250]
    dump = sink.messages()[0]
    assert b"X-Client-Proto: SMTP" in dump
    assert b"\n.dot line\n" in dump


async def test_size_limit_fails_before_sending(garrison_server) -> None:
    client = SMTPClient("client.remote.test", None)
    await client.connect("127.0.0.1", garrison_server.port("smtp"), 5.0, starttls=False)
    limit = garrison_server.settings.smtp.max_message_size
    big = request([ALICE])
    big.size = limit + 1

    async def on_accepted(indexes: list[int], reply: Reply) -> None:
        pytest.fail("nothing may be accepted")

    try:
        replies = await client.send(big, on_accepted)
    finally:
        await client.close()
    assert [(r.code, r.enhanced) for r in replies] == [(552, "5.3.4")]


async def test_connect_refused_is_temporary() -> None:
    client = SMTPClient("client.example.test", None)
    with pytest.raises(SMTPClientError) as raised:
        # Port 9 (discard) has no listener here, so the connection is refused.
        await client.connect("127.0.0.1", 9, 2.0)
    assert raised.value.reply.code == 451
    assert raised.value.reply.enhanced == "4.4.1"
