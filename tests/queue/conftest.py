"""Fixtures for the outbound queue: a DNS server, Postfix and smtp-sink.

- `dns_server(zone)` starts `DNSServer` on 127.0.0.1 (UDP and TCP, one
  ephemeral port) and stops it at teardown.
- `postfix_mx` runs a private Postfix (Debian's package, never the
  system instance) with its own config and queue directories under a
  temporary directory, listening on 127.0.0.1 and delivering mail for
  remote.test to one maildir. `postfix -c DIR stop` ends it at teardown.
- `smtp_sink(*options)` starts Postfix's smtp-sink with the given options
  (-r soft-rejects, -f hard-rejects the named commands) and kills it by
  PID at teardown.
- `queue_settings` points the resolver at the DNS server, allows only
  loopback destinations and shortens the retry intervals.

Postfix and smtp-sink are required: a missing program skips the test,
or fails it under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from garrison.config import Settings
from garrison.server.runner import Runner
from tests.e2e.conftest import require_tool
from tests.queue.dnsserver import DNSServer, Zone

REMOTE_DOMAIN = "remote.test"
START_TIMEOUT = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen | None = None) -> None:
    """Wait until 127.0.0.1:port accepts connections; fail after START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                pytest.fail(f"server for port {port} exited {process.returncode}")
            time.sleep(0.05)
    pytest.fail(f"nothing accepted connections on 127.0.0.1:{port}")


async def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> object:
    """Poll `predicate` until it returns a true value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def dns_server() -> Iterator[Callable[..., DNSServer]]:
    started: list[DNSServer] = []

    def start(zone: Zone, servfail: set[str] | None = None) -> DNSServer:
        server = DNSServer(zone, servfail).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def remote_zone(mx_address: str = "127.0.0.1") -> Zone:
    """The test zone: remote.test has an MX on loopback, plus TXT and TLSA."""
    return {
        (REMOTE_DOMAIN, "MX"): ["10 mx.remote.test."],
        ("mx.remote.test", "A"): [mx_address],
        (REMOTE_DOMAIN, "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
        ("_25._tcp.mx.remote.test", "TLSA"): ["3 1 1 " + "ab" * 32],
        ("implicit.test", "A"): [mx_address],
        ("nullmx.test", "MX"): ["0 ."],
        ("public.test", "MX"): ["10 mx.public.test."],
        ("mx.public.test", "A"): ["192.0.2.25"],
        ("noaddress.test", "MX"): ["10 mx.noaddress.test."],
        ("mx.noaddress.test", "TXT"): ['"no address records here"'],
    }


def queue_settings_for(settings: Settings, dns: DNSServer, smtp_port: int) -> Settings:
    """Return `settings` with DNS, routing and retry times set up for tests."""
    queue = settings.queue.model_copy(
        update={
            "smtp_port": smtp_port,
            "allowed_networks": ["127.0.0.0/8"],
            "min_retry_interval": 0.5,
            "max_retry_interval": 1.0,
            "poll_interval": 0.1,
            "connect_timeout": 5.0,
        }
    )
    dns_settings = settings.dns.model_copy(
        update={"nameservers": [dns.address], "timeout": 3.0}
    )
    return settings.model_copy(update={"queue": queue, "dns": dns_settings})


@asynccontextmanager
async def running(settings: Settings, run_queue: bool = True) -> AsyncIterator[Runner]:
    """Run every listener and the scheduler in this process; stop at exit."""
    runner = Runner(settings, run_queue=run_queue)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


# -- Postfix ------------------------------------------------------------------


class PostfixMX:
    """A private Postfix instance that accepts mail for remote.test."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.config = base / "conf"
        self.maildir = base / "mail" / "mailbox"
        self.maillog = base / "maillog"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        postfix = pwd.getpwnam("postfix")
        for sub in ("conf", "queue", "data", "mail"):
            (self.base / sub).mkdir(parents=True)
        os.chown(self.base / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(self.base / "mail", postfix.pw_uid, postfix.pw_gid)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.base / "queue",
            "data_directory": self.base / "data",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.base,
            "myhostname": f"mx.{REMOTE_DOMAIN}",
            "mydomain": REMOTE_DOMAIN,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": REMOTE_DOMAIN,
            "virtual_mailbox_base": self.base / "mail",
            "virtual_mailbox_maps": "static:mailbox/",
            "virtual_uid_maps": f"static:{postfix.pw_uid}",
            "virtual_gid_maps": f"static:{postfix.pw_gid}",
            "alias_maps": "",
            "alias_database": "",
            "smtp_dns_support_level": "disabled",
            # Postfix answers unknown users of remote.test with 550 5.1.1.
            "smtpd_reject_unlisted_recipient": "no",
            "smtpd_banner": "$myhostname ESMTP",
        }
        lines = [f"{key} = {value}" for key, value in main.items()]
        (self.config / "main.cf").write_text("\n".join(lines) + "\n")
        services = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (self.config / "master.cf").write_text("\n".join(services) + "\n")

    def start(self) -> None:
        self.write_config()
        self.process = subprocess.Popen(
            ["postfix", "-c", str(self.config), "start-fg"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop this instance's master with `postfix -c DIR stop`, then reap it."""
        subprocess.run(
            ["postfix", "-c", str(self.config), "stop"],
            capture_output=True,
            timeout=30,
        )
        if self.process is not None:
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self.process = None

    def messages(self) -> list[bytes]:
        """Return the messages delivered to the maildir so far."""
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        return [path.read_bytes() for path in sorted(new.iterdir())]

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""


@pytest.fixture
def postfix_mx() -> Iterator[PostfixMX]:
    require_tool("postfix", "postfix")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root to start")
    # Postfix's unprivileged daemons must reach the directory, and pytest's
    # tmp_path is private to root, so the instance lives in its own 0755
    # directory, removed at teardown.
    base = Path(tempfile.mkdtemp(prefix="garrison-postfix-"))
    base.chmod(0o755)
    mx = PostfixMX(base, free_port())
    mx.start()
    yield mx
    mx.stop()
    shutil.rmtree(base, ignore_errors=True)


# -- smtp-sink ----------------------------------------------------------------


class SMTPSink:
    """A running smtp-sink: its port and, with -d, the dump directory."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, dump: Path) -> None:
        self.process = process
        self.port = port
        self.dump = dump

    def messages(self) -> list[bytes]:
        return [path.read_bytes() for path in sorted(self.dump.iterdir())]


@pytest.fixture
def smtp_sink() -> Iterator[Callable[..., SMTPSink]]:
    program = require_tool("smtp-sink", "postfix")
    sinks: list[SMTPSink] = []
    dirs: list[Path] = []

    def start(*options: str) -> SMTPSink:
        port = free_port()
        dump = Path(tempfile.mkdtemp(prefix="garrison-sink-"))
        dump.chmod(0o777)
        dirs.append(dump)
        command = [
            program,
            "-u",
            "postfix",
            "-d",
            f"{dump}/%M.",
            *options,
            f"127.0.0.1:{port}",
            "10",
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, process)
        sink = SMTPSink(process, port, dump)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        os.kill(sink.process.pid, signal.SIGTERM)
        try:
            sink.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(sink.process.pid, signal.SIGKILL)
            sink.process.wait()
    for dump in dirs:
        shutil.rmtree(dump, ignore_errors=True)
