"""The real `garrison serve` delivering outbound: two instances, MX, kill -9.

- Two instances, a.test on 127.0.0.2 and b.test on 127.0.0.3, listen for
  SMTP on the same port number, which is their `queue.smtp_port`, and
  find each other through MX records served by a DNS server on 127.0.0.1.
  A forwards mail to B; a message B rejects bounces back through A's SRS
  address to the original sender's INBOX on B.
- kill -9 in the middle of a delivery: a scripted receiving server stops
  answering after the content (or after its 250), the test kills
  `garrison serve` with SIGKILL and starts it again, and the receiver
  must hold the message exactly once.
"""

from __future__ import annotations

import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, GarrisonProcess, free_port
from tests.queue.dnsserver import DNSServer

pytestmark = pytest.mark.e2e


class NamedHostProcess(GarrisonProcess):
    """A setup whose listeners bind one loopback address other than 127.0.0.1."""

    def __init__(self, data_dir: Path, host: str, domain: str) -> None:
        super().__init__(data_dir)
        self.host = host
        self.domain = domain

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1):
                return True
        except OSError:
            return False

    def alice(self) -> str:
        return f"alice@{self.domain}"


def port_free_on(port: int, hosts: list[str]) -> bool:
    for host in hosts:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def shared_port(hosts: list[str]) -> int:
    """Return a port that is free on every host in `hosts`."""
    for _ in range(50):
        port = free_port()
        if port_free_on(port, hosts):
            return port
    pytest.fail(f"no port free on all of {hosts}")


def make_instance(
    base: Path, host: str, domain: str, smtp_port: int, settings: dict[str, str]
) -> NamedHostProcess:
    """Run `garrison init` for `domain`, then move its listeners to `host`."""
    from tests.e2e.conftest import run_cli

    instance = NamedHostProcess(base / domain, host, domain)
    run_cli(
        "init",
        "--data-dir",
        str(instance.data_dir),
        "--hostname",
        f"mx.{domain}",
        "--domain",
        domain,
        "--listen",
        host,
    )
    instance.cli(
        "user", "passwd", instance.alice(), "--password-stdin", stdin=PASSWORD + "\n"
    )
    text = instance.config.read_text()
    names = re.findall(r'^name = "([^"]+)"', text, re.M)
    instance.ports = {name: free_port() for name in names}
    instance.ports["smtp"] = smtp_port
    for name, port in instance.ports.items():
        text = re.sub(
            rf'(name = "{name}"\n(?:.*\n)*?port = )\d+', rf"\g<1>{port}", text, count=1
        )
    for key, value in settings.items():
        text, count = re.subn(
            rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M
        )
        assert count == 1, f"setting {key} not found"
    instance.config.write_text(text)
    return instance


def queue_settings(dns: DNSServer, smtp_port: int, **extra: str) -> dict[str, str]:
    settings = {
        "workers": "1",
        "shutdown_grace": "1.0",
        "nameservers": f'["{dns.address}"]',
        "smtp_port": str(smtp_port),
        "allowed_networks": '["127.0.0.0/8"]',
        "min_retry_interval": "0.5",
        "max_retry_interval": "1.0",
        "poll_interval": "0.2",
        "lease_seconds": "5.0",
    }
    settings.update(extra)
    return settings


def inbox(instance: NamedHostProcess) -> list[bytes]:
    """Return the messages in alice's INBOX, read over IMAPS."""
    context = ssl.create_default_context(cafile=str(instance.ca_file))
    context.check_hostname = False
    with imaplib.IMAP4_SSL(
        instance.host, instance.port("imaps"), ssl_context=context
    ) as imap:
        imap.login(instance.alice(), PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [item[1] for item in data if isinstance(item, tuple)]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    server = DNSServer(
        {
            ("a.test", "MX"): ["10 mx.a.test."],
            ("mx.a.test", "A"): ["127.0.0.2"],
            ("b.test", "MX"): ["10 mx.b.test."],
            ("mx.b.test", "A"): ["127.0.0.3"],
        }
    ).start()
    yield server
    server.stop()


@pytest.fixture
def two_instances(
    tmp_path: Path, dns: DNSServer
) -> Iterator[tuple[NamedHostProcess, ...]]:
    port = shared_port(["127.0.0.2", "127.0.0.3"])
    a = make_instance(tmp_path, "127.0.0.2", "a.test", port, queue_settings(dns, port))
    b = make_instance(tmp_path, "127.0.0.3", "b.test", port, queue_settings(dns, port))
    started = []
    try:
        for instance in (a, b):
            instance.start()
            started.append(instance)
        yield a, b
    finally:
        for instance in started:
            if instance.process is not None:
                assert instance.stop() == 0, instance.log()


def test_forward_and_bounce_between_instances(two_instances) -> None:
    a, b = two_instances
    a.cli("alias", "add", "fwd@a.test", "alice@b.test")
    a.cli("alias", "add", "ghost@a.test", "nobody@b.test")

    with smtplib.SMTP(a.host, a.port("smtp"), timeout=10) as client:
        client.sendmail(
            "alice@b.test",
            ["fwd@a.test"],
            b"Subject: forwarded\r\nFrom: alice@b.test\r\n\r\nover MX\r\n",
        )
        client.sendmail(
            "alice@b.test",
            ["ghost@a.test"],
            b"Subject: doomed\r\nFrom: alice@b.test\r\n\r\nno such user\r\n",
        )

    def both_arrived() -> list[bytes] | None:
        try:
            messages = inbox(b)
        except (OSError, imaplib.IMAP4.error):
            # NOTE: under load an IMAPS poll has ended with an SSL EOF once;
            # the next poll decides.
            return None
        return messages if len(messages) >= 2 else None

    messages = wait_for(both_arrived, 60, "both messages")
    forwarded = [m for m in messages if b"Subject: forwarded" in m]
    bounces = [m for m in messages if b"multipart/report" in m]
    assert len(forwarded) == 1
    assert re.search(rb"Return-Path: <SRS0=[^>]+=b\.test=alice@a\.test>", forwarded[0])
    assert len(bounces) == 1
    report = bounces[0].decode()
    assert "Final-Recipient: rfc822; nobody@b.test" in report
    assert "Action: failed" in report
    assert "Status: 5.1.1" in report
    assert "Remote-MTA: dns; mx.b.test" in report
    assert "Subject: doomed" in report
    assert "Return-Path: <>" in report
    wait_for(
        lambda: "0 messages" in a.cli("queue", "list").stdout, 10, "A's queue empty"
    )


class ScriptedReceiver:
    """An SMTP server that can stall before or after its reply to the content.

    No Postfix program can pause at that point on request, so the test
    needs this small server to place the kill -9 exactly. It counts a
    message as received only when it sends 250 for the content, as an MTA
    takes responsibility at that moment.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = port
        self.accepted: list[bytes] = []
        self.stall_before_reply = threading.Event()
        self.stall_after_reply = threading.Event()
        self.content_seen = threading.Event()
        self.replied = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        reader = conn.makefile("rb")
        try:
            conn.sendall(b"220 receiver.test ESMTP\r\n")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-receiver.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    content = b""
                    while (data_line := reader.readline()) not in (b".\r\n", b""):
                        content += data_line
                    self.content_seen.set()
                    if self.stall_before_reply.is_set():
                        reader.read()  # wait until the client is gone
                        return
                    conn.sendall(b"250 2.0.0 accepted\r\n")
                    self.accepted.append(content)
                    self.replied.set()
                    if self.stall_after_reply.is_set():
                        reader.read()
                        return
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 2.0.0 ok\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self._thread.join(5)


@pytest.mark.parametrize("moment", ["before the 250", "after the 250"])
def test_kill_during_delivery_neither_loses_nor_duplicates(
    tmp_path: Path, dns: DNSServer, moment: str
) -> None:
    receiver_port = free_port()
    receiver = ScriptedReceiver(receiver_port)
    smtp_port = shared_port(["127.0.0.2"])
    settings = queue_settings(
        dns,
        smtp_port,
        routing_override=f'{{"sink.test" = "127.0.0.1:{receiver_port}"}}',
    )
    a = make_instance(tmp_path, "127.0.0.2", "a.test", smtp_port, settings)
    a.cli("alias", "add", "out@a.test", "someone@sink.test")
    if moment == "before the 250":
        receiver.stall_before_reply.set()
        checkpoint = receiver.content_seen
    else:
        receiver.stall_after_reply.set()
        checkpoint = receiver.replied
    try:
        a.start()
        with smtplib.SMTP(a.host, a.port("smtp"), timeout=10) as client:
            client.sendmail(
                "x@b.test", ["out@a.test"], b"Subject: once\r\n\r\nonly once\r\n"
            )
        assert checkpoint.wait(20), f"the delivery never reached {moment}:\n{a.log()}"
        if moment == "after the 250":
            # The 250 is recorded in one group commit; give it that long.
            time.sleep(0.5)
        assert a.process is not None
        os.kill(a.process.pid, signal.SIGKILL)
        a.process.wait(10)
        a.process = None

        receiver.stall_before_reply.clear()
        receiver.stall_after_reply.clear()
        a.start()
        wait_for(lambda: len(receiver.accepted) >= 1, 30, "the delivery after restart")
        # Once the message has left the queue nothing can send it again.
        wait_for(
            lambda: "0 messages" in a.cli("queue", "list").stdout, 20, "an empty queue"
        )
        assert len(receiver.accepted) == 1
        assert b"only once" in receiver.accepted[0]
    finally:
        if a.process is not None:
            a.stop()
        receiver.close()
