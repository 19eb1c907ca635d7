"""Submitted mail is DKIM-signed before local delivery and before queueing."""

from __future__ import annotations

import dkim
import pytest
from typer.testing import CliRunner

from garrison.cli.main import app
from garrison.dkim import DKIMKeyStore
from garrison.dkim.keys import dns_record
from tests.conftest import ALICE, BOB
from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import inbox_messages
from tests.submission.conftest import logged_in, send_message

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>,\r\n\tsomeone@remote.example\r\n"
    b"Subject: signed\r\n"
    b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <signed@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
    b"..a line that starts with a dot\r\n"
    b"\r\n"
    b"\r\n"
)


def dnsfunc_for(keys: DKIMKeyStore, domain: str):
    key = keys.signing_key(domain)
    assert key is not None
    name, value = dns_record(key)

    def dnsfunc(query: bytes, timeout: int = 5) -> bytes:
        assert query.decode().rstrip(".") == name
        return value.encode()

    return dnsfunc


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_submitted_mail_is_signed(submission_server, algorithm) -> None:
    keys = DKIMKeyStore(submission_server.settings.db_path)
    try:
        keys.generate("example.test", algorithm, "s1")
        async with logged_in(submission_server) as smtp:
            reply = await send_message(
                smtp, ALICE, [BOB, "someone@remote.example"], MESSAGE
            )
            assert reply.code == 250, reply.text
        dnsfunc = dnsfunc_for(keys, "example.test")
    finally:
        keys.close()

    stored = inbox_messages(submission_server, BOB)
    assert len(stored) == 1
    # The trace fields stay on top, the signature follows them.
    assert stored[0].startswith(b"Return-Path: <alice@example.test>\r\nReceived: ")
    assert b"\r\nDKIM-Signature: v=1; a=" in stored[0]
    # Dot-stuffing was undone before signing.
    assert b"\r\n.a line that starts with a dot\r\n" in stored[0]
    assert dkim.verify(stored[0], dnsfunc=dnsfunc)

    queue = submission_server.services.delivery.outbound
    assert len(queue.handed_over) == 1
    _, queued = queue.handed_over[0]
    assert queued == stored[0]


async def test_mx_mail_is_not_signed(submission_server) -> None:
    keys = DKIMKeyStore(submission_server.settings.db_path)
    try:
        keys.generate("example.test", "ed25519", "s1")
    finally:
        keys.close()
    async with Dialogue.connect(submission_server.port("smtp")) as smtp:
        await smtp.hello()
        reply = await send_message(smtp, ALICE, [BOB], MESSAGE)
        assert reply.code == 250
    assert b"DKIM-Signature" not in inbox_messages(submission_server, BOB)[0]


async def test_domain_without_key_sends_unsigned(submission_server) -> None:
    async with logged_in(submission_server) as smtp:
        reply = await send_message(smtp, ALICE, [BOB], MESSAGE)
        assert reply.code == 250
    assert b"DKIM-Signature" not in inbox_messages(submission_server, BOB)[0]


async def test_large_message_is_signed(submission_server) -> None:
    keys = DKIMKeyStore(submission_server.settings.db_path)
    try:
        keys.generate("example.test", "rsa", "s1")
        dnsfunc = dnsfunc_for(keys, "example.test")
    finally:
        keys.close()
    # Over the blob store's in-memory limit, so signing streams from the file.
    line = b"0123456789" * 9 + b"\r\n"
    content = MESSAGE + line * 30000
    async with logged_in(submission_server) as smtp:
        reply = await send_message(smtp, ALICE, [BOB], content)
        assert reply.code == 250
    stored = inbox_messages(submission_server, BOB)[0]
    assert stored.endswith(line * 3)
    assert dkim.verify(stored, dnsfunc=dnsfunc)


def test_cli_generate_list_remove(settings) -> None:
    config = ["--config", str(settings.server.data_dir / "garrison.toml")]
    runner = CliRunner()

    result = runner.invoke(
        app, ["dkim", "generate", "example.test", "--algorithm", "ed25519", *config]
    )
    assert result.exit_code == 0, result.output
    assert "g20" in result.output
    assert "._domainkey.example.test. IN TXT" in result.output
    assert '"v=DKIM1; k=ed25519; p=' in result.output

    again = runner.invoke(app, ["dkim", "generate", "example.test", *config])
    assert again.exit_code == 1
    assert "already has a DKIM key" in again.output

    listed = runner.invoke(app, ["dkim", "list", *config])
    assert listed.exit_code == 0
    assert listed.output.startswith("example.test\tg20")

    removed = runner.invoke(app, ["dkim", "remove", "example.test", *config])
    assert removed.exit_code == 0
    assert runner.invoke(app, ["dkim", "list", *config]).output == ""

    unknown = runner.invoke(app, ["dkim", "generate", "other.example", *config])
    assert unknown.exit_code == 1
    assert "not a local domain" in unknown.output


def test_rsa_record_is_split_for_dns(settings) -> None:
    keys = DKIMKeyStore(settings.db_path)
    try:
        info = keys.generate("example.test", "rsa", "big")
    finally:
        keys.close()
    assert info.record_name == "big._domainkey.example.test"
    assert info.record_value.startswith("v=DKIM1; k=rsa; p=MII")
    from garrison.dkim.keys import zone_file_line

    line = zone_file_line(info.record_name, info.record_value)
    strings = line.split('"')[1::2]
    assert len(strings) == 2
    assert all(len(part) <= 255 for part in strings)
    assert "".join(strings) == info.record_value
