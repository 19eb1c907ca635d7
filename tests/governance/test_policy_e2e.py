"""`garrison policy` changes reach every worker of the real `garrison serve`."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GarrisonProcess

pytestmark = pytest.mark.e2e

CLIENT = "127.0.0.5"
# Connections per probe: the kernel spreads them over both workers.
PROBES = 6


def greeting_from(port: int, source: str) -> str:
    """Connect from `source`, return the first reply line, then send QUIT."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=10, source_address=(source, 0)
    ) as sock:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(512)
            if not chunk:
                break
            data += chunk
        sock.sendall(b"QUIT\r\n")
        return data.decode()


def wait_for_greetings(port: int, prefix: str, timeout: float) -> float:
    """Probe until PROBES greetings in a row start with `prefix`; return seconds."""
    started = time.monotonic()
    while True:
        greetings = [greeting_from(port, CLIENT) for _ in range(PROBES)]
        if all(line.startswith(prefix) for line in greetings):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < timeout, f"greetings after {elapsed:.1f} s: {greetings}"
        # Polling faster would hit limits.connection_rate_per_ip.
        time.sleep(0.2)


def test_policy_block_reaches_all_workers(tmp_path: Path) -> None:
    setup = GarrisonProcess(tmp_path / "var")
    setup.create(shutdown_grace="1.0", workers="2")
    setup.start()
    try:
        port = setup.port("smtp")
        assert greeting_from(port, CLIENT).startswith("220 ")

        setup.cli("policy", "add", "block", CLIENT, "--note", "e2e")
        blocked_after = wait_for_greetings(port, "554 5.7.1 ", timeout=6)
        assert greeting_from(port, CLIENT) == (
            f"554 5.7.1 Service unavailable; client [{CLIENT}] blocked by local "
            "policy\r\n"
        )
        assert greeting_from(port, "127.0.0.6").startswith("220 ")

        setup.cli("policy", "remove", CLIENT)
        allowed_after = wait_for_greetings(port, "220 ", timeout=6)
        print(
            f"\nblock applied in {blocked_after:.2f} s, removal in "
            f"{allowed_after:.2f} s (policy_refresh_interval 2 s, 2 workers)"
        )
    finally:
        status = setup.stop()
    assert status == 0, setup.log()
