"""`garrison queue list|show|retry|hold|release|delete` against a real queue.

A real `garrison serve` (a.test on 127.0.0.2) routes sink.test to
Postfix's smtp-sink on 127.0.0.1. First the sink replies 451 to RCPT,
so three messages stay deferred, and the retry interval (300 s) keeps
them from being tried again by themselves. Then an accepting smtp-sink
takes over the port, and each command must show its effect: a held
message stays queued until it is released, retry delivers a deferred
message at once, and a deleted message never arrives.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import require_tool
from tests.e2e.test_queue import (  # noqa: F401 - the dns fixture is used by name
    NamedHostProcess,
    dns,
    make_instance,
    queue_settings,
    shared_port,
    wait_for,
)
from tests.queue.conftest import free_port, wait_for_port
from tests.queue.dnsserver import DNSServer

pytestmark = pytest.mark.e2e

COMMANDS = ["show", "retry", "hold", "release", "delete"]
SOFT_REJECT = "451 4.3.0 Try again later"


class Sink:
    """smtp-sink processes that take turns on one port, killed by PID."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dump = Path(tempfile.mkdtemp(prefix="garrison-sink-"))
        self.dump.chmod(0o777)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> None:
        program = require_tool("smtp-sink", "postfix")
        self.process = subprocess.Popen(
            [
                program,
                "-u",
                "postfix",
                "-d",
                f"{self.dump}/%M.",
                *options,
                f"127.0.0.1:{self.port}",
                "10",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def messages(self) -> list[bytes]:
        return [path.read_bytes() for path in sorted(self.dump.iterdir())]


@pytest.fixture
def sink() -> Iterator[Sink]:
    started = Sink(free_port())
    yield started
    started.stop()
    shutil.rmtree(started.dump, ignore_errors=True)


@pytest.fixture
def instance(
    tmp_path: Path,
    dns: DNSServer,  # noqa: F811 - the fixture imported above
    sink: Sink,
) -> Iterator[NamedHostProcess]:
    smtp_port = shared_port(["127.0.0.2"])
    settings = queue_settings(
        dns,
        smtp_port,
        min_retry_interval="300.0",
        max_retry_interval="600.0",
        routing_override=f'{{"sink.test" = "127.0.0.1:{sink.port}"}}',
    )
    a = make_instance(tmp_path, "127.0.0.2", "a.test", smtp_port, settings)
    for name in ("held", "retried", "deleted"):
        a.cli("alias", "add", f"{name}@a.test", f"{name}@sink.test")
    a.start()
    yield a
    if a.process is not None:
        assert a.stop() == 0, a.log()


def queue_ids(a: NamedHostProcess) -> dict[str, str]:
    """Map each recipient's local part to its queue id, from `queue show`."""
    listing = a.cli("queue", "list").stdout
    found = {}
    for queue_id in re.findall(r"^([0-9A-Z]{16})\t", listing, re.M):
        shown = a.cli("queue", "show", queue_id).stdout
        match = re.search(r"^recipient <([a-z]+)@sink\.test>", shown, re.M)
        assert match is not None, shown
        found[match.group(1)] = queue_id
    return found


def deferred_once(a: NamedHostProcess) -> dict[str, str] | None:
    """Return the queue ids once all three messages have one failed attempt."""
    ids = queue_ids(a)
    if len(ids) != 3:
        return None
    for queue_id in ids.values():
        if "attempts=1" not in a.cli("queue", "show", queue_id).stdout:
            return None
    return ids


def subjects(sink: Sink) -> list[str]:
    return sorted(
        match.group(1).decode()
        for message in sink.messages()
        if (match := re.search(rb"^Subject: (\S+)", message, re.M))
    )


def test_queue_commands_on_deferred_mail(
    instance: NamedHostProcess, sink: Sink
) -> None:
    a = instance
    sink.start("-r", "RCPT", "-b", SOFT_REJECT)
    with smtplib.SMTP(a.host, a.port("smtp"), timeout=10) as client:
        for name in ("held", "retried", "deleted"):
            client.sendmail(
                "sender@b.test",
                [f"{name}@a.test"],
                f"Subject: {name}\r\n\r\nqueue command test\r\n".encode(),
            )
    ids = wait_for(lambda: deferred_once(a), 30, "three deferred messages")

    shown = a.cli("queue", "show", ids["retried"]).stdout
    assert f"queue id: {ids['retried']}" in shown
    # Forwarded mail leaves with an SRS sender in a.test.
    assert re.search(r"^sender: <SRS0=[^>]+=b\.test=sender@a\.test>$", shown, re.M)
    assert "held: no" in shown
    assert "recipient <retried@sink.test> status=queued attempts=1" in shown
    assert f"reply={SOFT_REJECT}" in shown
    assert re.search(r"relay=sink\.test\[127\.0\.0\.1\]:\d+", shown), shown
    listing = a.cli("queue", "list").stdout
    assert "3 messages in the queue" in listing
    assert listing.count("recipients=1") == 3

    # From now on the next hop accepts, but nothing is due for 300 s.
    sink.stop()
    sink.start()

    assert a.cli("queue", "hold", ids["held"]).stdout == f"held {ids['held']}\n"
    assert "held: yes" in a.cli("queue", "show", ids["held"]).stdout
    # A retry makes the held message due, and the hold still keeps it.
    a.cli("queue", "retry", ids["held"])
    deleted = a.cli("queue", "delete", ids["deleted"])
    assert deleted.stdout == f"deleted {ids['deleted']}\n"
    retried = a.cli("queue", "retry", ids["retried"])
    assert retried.stdout == f"scheduled for retry: {ids['retried']}\n"

    wait_for(lambda: subjects(sink) == ["retried"], 20, "the retried message")
    wait_for(
        lambda: ids["retried"] not in a.cli("queue", "list").stdout,
        10,
        "the retried message to leave the queue",
    )
    # Scans run every 0.2 s; ten of them must leave the held message alone.
    time.sleep(2.0)
    assert subjects(sink) == ["retried"]
    listing = a.cli("queue", "list").stdout
    assert "1 messages in the queue" in listing
    assert re.search(rf"^{ids['held']}\t.*\theld\t", listing, re.M), listing

    assert a.cli("queue", "release", ids["held"]).stdout == f"released {ids['held']}\n"
    wait_for(lambda: subjects(sink) == ["held", "retried"], 20, "the released one")
    wait_for(
        lambda: "0 messages in the queue" in a.cli("queue", "list").stdout,
        10,
        "an empty queue",
    )
    assert "deleted" not in subjects(sink)


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_queue_id_fails(instance: NamedHostProcess, command: str) -> None:
    result = instance.cli("queue", command, "NOSUCHQUEUEID", check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "garrison: error: queue id NOSUCHQUEUEID not found; see 'garrison queue list'\n"
    )
