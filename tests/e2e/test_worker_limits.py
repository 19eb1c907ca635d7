"""Connection limits hold for the server as a whole, not per worker process."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GarrisonProcess

pytestmark = pytest.mark.e2e

LIMIT = 3
ATTEMPTS = 40


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def admitted(port: int) -> socket.socket:
    """Connect until the server greets with 220.

    The probe connections of `GarrisonProcess.start` may still count for a
    moment after they closed.
    """
    deadline = time.monotonic() + 5
    while True:
        sock = connect(port)
        reply = greeting(sock)
        if reply.startswith("220 "):
            return sock
        sock.close()
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)


def greeting(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(512)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_per_ip_limit_spans_workers(tmp_path: Path) -> None:
    garrison_setup = GarrisonProcess(tmp_path / "var")
    garrison_setup.create(
        shutdown_grace="1.0", workers="2", max_connections_per_ip=str(LIMIT)
    )
    garrison_setup.start()
    sockets = []
    try:
        # The connections land on whichever worker accepts first, so the
        # extra attempts reach both workers over a run.
        for _ in range(LIMIT):
            sockets.append(admitted(garrison_setup.port("smtp")))
        for _ in range(ATTEMPTS):
            with connect(garrison_setup.port("smtp")) as sock:
                assert greeting(sock).startswith("421 4.7.0")
    finally:
        for sock in sockets:
            sock.close()
        assert garrison_setup.stop() == 0, garrison_setup.log()
