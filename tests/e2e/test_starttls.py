"""STARTTLS on the real server (uvloop): the ClientHello that follows the OK
at once must reach the TLS layer, for IMAP, POP3 and SMTP alike."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.e2e.conftest import GarrisonProcess

pytestmark = pytest.mark.e2e

ROUNDS = 30
CASES = {
    "imap": (b"a STARTTLS\r\n", b"a OK", b"b NOOP\r\n", b"b OK"),
    "pop3": (b"STLS\r\n", b"+OK", b"CAPA\r\n", b"+OK"),
    "smtp": (b"EHLO client.example\r\nSTARTTLS\r\n", b"220 ", b"NOOP\r\n", b"250 "),
}


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def starttls_round(port: int, protocol: str, context: ssl.SSLContext) -> bytes:
    command, ready, probe, _ = CASES[protocol]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        plain = sock.makefile("rb")
        plain.readline()
        if protocol == "smtp":
            sock.sendall(command.split(b"\r\n")[0] + b"\r\n")
            while not plain.readline().startswith(b"250 "):
                pass
            command = b"STARTTLS\r\n"
        sock.sendall(command)
        line = plain.readline()
        assert line.startswith(ready), line
        with context.wrap_socket(sock) as secure:
            secure.sendall(probe)
            return secure.makefile("rb").readline()


@pytest.mark.parametrize("protocol", sorted(CASES))
def test_hello_right_after_ready_reply(
    garrison_process: GarrisonProcess, protocol: str
) -> None:
    context = client_context()
    expected = CASES[protocol][3]
    for _ in range(ROUNDS):
        reply = starttls_round(garrison_process.port(protocol), protocol, context)
        assert reply.startswith(expected), reply
