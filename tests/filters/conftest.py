"""Fixtures for the anti-virus tests: a private clamd and the EICAR test file.

`start_clamd(tcp=False, stream_max_length="100M")` runs Debian's clamd
(package clamav-daemon, installed by scripts/install-test-deps.sh) in the
foreground with its own clamd.conf in a temporary directory. It listens on a
Unix socket in that directory, or on TCP at 127.0.0.1, and loads a signature
database built here: one `.hdb` line with the MD5 and size of the EICAR
test file. Nothing is
downloaded, so clamd is ready in well under a second. The fixture stops
every clamd it started by PID at teardown.

A missing clamd skips the test, and fails it under CI=true.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import require_tool
from tests.filters.authzone import auth_server  # noqa: F401 - fixture
from tests.filters.rspamd_server import (  # noqa: F401 (fixtures)
    rspamd,
    shared_rspamd,
    start_rspamd,
)
from tests.queue.conftest import dns_server  # noqa: F401 - fixture

# The EICAR anti-virus test file, in two pieces so that scanners on
# developer machines do not flag this source file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# clamd appends ".UNOFFICIAL" to names from databases it has no signature for.
EICAR_SIGNATURE = "Garrison-Test-EICAR.UNOFFICIAL"
START_TIMEOUT = 30.0


@dataclass
class Clamd:
    """A running private clamd: its address for the settings, and its process."""

    address: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def stop(self) -> None:
        """Stop clamd by PID and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(
    directory: Path, *, tcp_port: int | None, stream_max_length: str
) -> Path:
    database = directory / "db"
    database.mkdir()
    digest = hashlib.md5(EICAR).hexdigest()
    name = EICAR_SIGNATURE.removesuffix(".UNOFFICIAL")
    (database / "garrison-test.hdb").write_text(f"{digest}:{len(EICAR)}:{name}\n")
    lines = [
        "Foreground yes",
        f"DatabaseDirectory {database}",
        f"TemporaryDirectory {directory}",
        f"LogFile {directory / 'clamd.log'}",
        f"StreamMaxLength {stream_max_length}",
    ]
    if tcp_port is None:
        lines.append(f"LocalSocket {directory / 'clamd.sock'}")
    else:
        lines += [f"TCPSocket {tcp_port}", "TCPAddr 127.0.0.1"]
    config = directory / "clamd.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_ready(clamd: Clamd) -> None:
    """Wait until clamd replies PONG to PING; fail after START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if clamd.process.poll() is not None:
            log = clamd.log_file.read_text() if clamd.log_file.exists() else ""
            pytest.fail(f"clamd exited with {clamd.process.returncode}: {log}")
        try:
            if clamd.address.startswith("/"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(clamd.address)
            else:
                host, port = clamd.address.rsplit(":", 1)
                sock = socket.create_connection((host, int(port)), timeout=1)
            with sock:
                sock.sendall(b"zPING\0")
                if sock.recv(16) == b"PONG\0":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"clamd did not answer PING within {START_TIMEOUT} s")


@pytest.fixture
def start_clamd() -> Iterator[Callable[..., Clamd]]:
    program = require_tool("clamd", "clamav-daemon")
    started: list[Clamd] = []
    directories: list[str] = []

    def start(*, tcp: bool = False, stream_max_length: str = "100M") -> Clamd:
        # A short path under /tmp, because a Unix socket path may hold at
        # most 107 bytes and pytest's tmp_path can be longer.
        directory = Path(tempfile.mkdtemp(prefix="clamd-"))
        directories.append(str(directory))
        tcp_port = _free_port() if tcp else None
        config = _write_config(
            directory, tcp_port=tcp_port, stream_max_length=stream_max_length
        )
        process = subprocess.Popen(
            [program, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        address = (
            str(directory / "clamd.sock")
            if tcp_port is None
            else f"127.0.0.1:{tcp_port}"
        )
        clamd = Clamd(address, process, directory / "clamd.log")
        started.append(clamd)
        _wait_ready(clamd)
        return clamd

    try:
        yield start
    finally:
        for clamd in started:
            clamd.stop()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clamd(start_clamd: Callable[..., Clamd]) -> Clamd:
    """A private clamd on a Unix socket with the EICAR database."""
    return start_clamd()
