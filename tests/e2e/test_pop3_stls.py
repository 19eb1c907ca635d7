"""POP3 STLS against the real process, which runs its event loop on uvloop."""

from __future__ import annotations

import poplib
import socket
import ssl

import pytest

from tests.e2e.conftest import ALICE, PASSWORD, GarrisonProcess

pytestmark = pytest.mark.e2e

TIMEOUT = 15.0


def client_context(garrison: GarrisonProcess) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(garrison.ca_file))
    context.check_hostname = False
    return context


def test_poplib_stls_login(garrison_process: GarrisonProcess) -> None:
    pop = poplib.POP3("127.0.0.1", garrison_process.port("pop3"), timeout=TIMEOUT)
    try:
        assert "STLS" in pop.capa()
        pop.stls(context=client_context(garrison_process))
        assert "STLS" not in pop.capa()
        pop.user(ALICE)
        assert pop.pass_(PASSWORD).startswith(b"+OK")
        assert pop.stat() == (0, 0)
    finally:
        pop.quit()


def test_stls_drops_pipelined_plaintext(garrison_process: GarrisonProcess) -> None:
    sock = socket.create_connection(
        ("127.0.0.1", garrison_process.port("pop3")), timeout=TIMEOUT
    )
    plain = sock.makefile("rb")
    assert plain.readline().startswith(b"+OK")
    # USER after STLS in the same packet, as a man in the middle could add it.
    sock.sendall(f"STLS\r\nUSER {ALICE}\r\n".encode())
    assert plain.readline().startswith(b"+OK")

    tls = client_context(garrison_process).wrap_socket(sock)
    reader = tls.makefile("rb")
    tls.sendall(f"PASS {PASSWORD}\r\n".encode())
    assert reader.readline() == b"-ERR send USER first\r\n"
    tls.sendall(b"QUIT\r\n")
    assert reader.readline().startswith(b"+OK")
    tls.close()
