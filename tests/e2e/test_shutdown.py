"""SIGTERM while an SMTP transaction is open: 421, and no accepted mail lost."""

from __future__ import annotations

import imaplib
import socket
import ssl

import pytest

from tests.e2e.conftest import ALICE, BOB, PASSWORD, GarrisonProcess

pytestmark = pytest.mark.e2e

TIMEOUT = 15.0


class SMTPClient:
    """A minimal SMTP client that leaves each step to the test."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        """Read one reply, multi-line or not; return its last line."""
        while True:
            line = self.file.readline().decode()
            assert line.endswith("\r\n"), f"incomplete reply line {line!r}"
            if line[3:4] != "-":
                return line.rstrip("\r\n")

    def command(self, line: str, expected: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        reply = self.reply()
        assert reply.startswith(expected), f"{line!r} got {reply!r}"
        return reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def message(tag: str) -> bytes:
    return (
        f"From: {BOB}\r\nTo: {ALICE}\r\nSubject: {tag}\r\n"
        f"Message-ID: <{tag}@client.example.test>\r\n\r\nBody of {tag}.\r\n"
    ).encode()


def inbox_message_ids(garrison: GarrisonProcess) -> list[bytes]:
    context = ssl.create_default_context(cafile=str(garrison.ca_file))
    context.check_hostname = False
    with imaplib.IMAP4_SSL(
        "127.0.0.1", garrison.port("imaps"), ssl_context=context, timeout=TIMEOUT
    ) as imap:
        imap.login(ALICE, PASSWORD)
        status, _ = imap.select("INBOX", readonly=True)
        assert status == "OK"
        status, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert status == "OK", data
    return [item[1].strip() for item in data if isinstance(item, tuple)]


def test_sigterm_during_data_replies_421(garrison_process: GarrisonProcess) -> None:
    client = SMTPClient(garrison_process.port("smtp"))
    assert client.reply().startswith("220")
    client.command("EHLO client.example.test", "250")

    client.command(f"MAIL FROM:<{BOB}>", "250")
    client.command(f"RCPT TO:<{ALICE}>", "250")
    client.command("DATA", "354")
    client.sock.sendall(message("first") + b".\r\n")
    assert client.reply().startswith("250")

    client.command(f"MAIL FROM:<{BOB}>", "250")
    client.command(f"RCPT TO:<{ALICE}>", "250")
    client.command("DATA", "354")
    # The start of the second message, without the terminating ".".
    client.sock.sendall(message("second")[:40])

    garrison_process.terminate()
    reply = client.reply()
    assert reply.startswith("421"), reply
    client.close()
    assert garrison_process.wait() == 0, garrison_process.log()

    garrison_process.start()
    assert inbox_message_ids(garrison_process) == [
        b"Message-ID: <first@client.example.test>"
    ]
