"""Fixtures that run the real `garrison` command as a subprocess.

`garrison_process` creates a setup with `garrison init` in a temporary
directory, sets alice's password with `garrison user passwd`, moves every
listener to a free ephemeral port on 127.0.0.1 and starts `garrison serve`.
It waits until every port accepts connections and, at teardown, stops the
process with SIGTERM by PID and checks that it exits with status 0 within
10 seconds.

`require_tool` makes a test skip when a client program is missing, except
under CI=true, where it fails and names the Debian package to install.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PASSWORD = "e2e-password-1"
HOSTNAME = "mail.example.test"

STOP_TIMEOUT = 10.0
START_TIMEOUT = 30.0

GARRISON = str(Path(sys.executable).with_name("garrison"))


def require_tool(program: str, package: str) -> str:
    """Return the path of `program`; skip, or fail under CI, when missing."""
    path = shutil.which(program) or (
        f"/usr/sbin/{program}" if os.path.exists(f"/usr/sbin/{program}") else None
    )
    if path is not None:
        return path
    message = (
        f"{program} not found: install the Debian package {package} "
        "(scripts/install-test-deps.sh does)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run_cli(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the `garrison` command with `args` and return the finished process."""
    result = subprocess.run(
        [GARRISON, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, (
            f"garrison {' '.join(args)} exited {result.returncode}: {result.stderr}"
        )
    return result


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_listener_ports(config_text: str, ports: dict[str, int]) -> str:
    """Return the config text with each `[[listeners]]` port replaced.

    `ports` maps listener names to ports. Every listener named in the text
    must be in `ports`, and its address is set to 127.0.0.1.
    """
    head, *blocks = config_text.split("[[listeners]]")
    rewritten = [head]
    for block in blocks:
        name = re.search(r'^name = "([^"]+)"', block, re.MULTILINE)
        assert name is not None, f"listener without a name: {block!r}"
        port = ports[name.group(1)]
        block, count = re.subn(r"^port = \d+", f"port = {port}", block, flags=re.M)
        assert count == 1, f"listener {name.group(1)} has no single port line"
        block = re.sub(
            r'^address = "[^"]*"', 'address = "127.0.0.1"', block, flags=re.M
        )
        rewritten.append(block)
    return "[[listeners]]".join(rewritten)


def listener_names(config_text: str) -> list[str]:
    return re.findall(r'^name = "([^"]+)"', config_text, re.MULTILINE)


class PortTaken(Exception):
    """`garrison serve` could not bind a port that another process took."""


class GarrisonProcess:
    """A Garrison setup in a directory and the `garrison serve` running it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.config = data_dir / "garrison.toml"
        self.log_path = data_dir / "serve.log"
        self.ca_file = data_dir / "tls" / "cert.pem"
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None

    def create(self, **settings: str) -> None:
        """Run `garrison init`, set passwords, add bob, pick free ports.

        Each keyword in `settings` replaces the value of the first config
        line `key = ...`, written as TOML text, such as shutdown_grace="1.0".
        """
        run_cli(
            "init",
            "--data-dir",
            str(self.data_dir),
            "--hostname",
            HOSTNAME,
            "--domain",
            DOMAIN,
        )
        self.cli("user", "passwd", ALICE, "--password-stdin", stdin=PASSWORD + "\n")
        self.cli("user", "add", BOB, "--password-stdin", stdin=PASSWORD + "\n")

        text = self.config.read_text()
        self.ports = {name: free_port() for name in listener_names(text)}
        text = set_listener_ports(text, self.ports)
        # Lookups go to loopback only: port 9 has no server, so they fail
        # at once unless a test serves DNS and sets its own address.
        text = text.replace("\nnameservers = []\n", '\nnameservers = ["127.0.0.1:9"]\n', 1)
        for key, value in settings.items():
            text, count = re.subn(
                rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M
            )
            assert count == 1, f"setting {key} not found in {self.config}"
        self.config.write_text(text)

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a `garrison` subcommand against this setup's config."""
        return run_cli(*args, "--config", str(self.config), stdin=stdin, check=check)

    def start(self) -> None:
        """Start `garrison serve` and wait until every listener accepts.

        Ports come from `free_port`, which another test running in parallel
        may take before the server binds it; on a bind failure the listeners
        get fresh ports and the server is started again, up to 3 times.
        """
        for attempt in range(3):
            try:
                self._start_once()
                return
            except PortTaken:
                if attempt == 2:
                    raise
                self.process = None
                self.log_path.unlink(missing_ok=True)
                self.ports = {name: free_port() for name in self.ports}
                self.config.write_text(
                    set_listener_ports(self.config.read_text(), self.ports)
                )

    def _start_once(self) -> None:
        assert self.process is None, "garrison serve is already running"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [GARRISON, "serve", "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        for name, port in self.ports.items():
            while not self._accepts(port):
                if self.process.poll() is not None:
                    if "cannot bind" in self.log() and "already in use" in self.log():
                        raise PortTaken(self.log())
                    pytest.fail(
                        f"garrison serve exited {self.process.returncode} before "
                        f"listener {name} accepted:\n{self.log()}"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"listener {name} on port {port} never accepted")
                time.sleep(0.05)

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def terminate(self) -> None:
        """Send SIGTERM to `garrison serve` by PID without waiting."""
        assert self.process is not None, "garrison serve is not running"
        os.kill(self.process.pid, signal.SIGTERM)

    def stop(self) -> int:
        """Send SIGTERM by PID and return the exit status.

        Fails the test when the process is still running STOP_TIMEOUT seconds
        later, after killing it.
        """
        self.terminate()
        return self.wait()

    def wait(self) -> int:
        """Wait for `garrison serve` to exit after SIGTERM; return its status."""
        process, self.process = self.process, None
        assert process is not None, "garrison serve is not running"
        try:
            return process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(
                f"garrison serve did not exit within {STOP_TIMEOUT} s of SIGTERM:\n"
                f"{self.log()}"
            )

    def log(self) -> str:
        """Return the output of `garrison serve` so far."""
        return self.log_path.read_text(errors="replace")[-20000:]

    def port(self, name: str) -> int:
        return self.ports[name]


@pytest.fixture
def garrison_setup(tmp_path: Path) -> GarrisonProcess:
    """A setup created by the real CLI, not yet serving."""
    setup = GarrisonProcess(tmp_path / "var")
    setup.create(shutdown_grace="1.0")
    return setup


@pytest.fixture
def garrison_process(garrison_setup: GarrisonProcess) -> Iterator[GarrisonProcess]:
    """The real `garrison serve`, stopped with SIGTERM at teardown."""
    garrison_setup.start()
    yield garrison_setup
    if garrison_setup.process is not None:
        status = garrison_setup.stop()
        assert status == 0, (
            f"garrison serve exited {status} after SIGTERM:\n{garrison_setup.log()}"
        )
