"""Submitted mail crosses from one real `garrison serve` to another, signed.

Instance A (a.test on 127.0.0.2) gets a DKIM key from `garrison dkim
generate`, and the TXT record that the command prints is published in the
test DNS server. A user of A submits with swaks (AUTH PLAIN after
STARTTLS on port submission) and with smtplib (implicit TLS on port
submissions). A's queue finds B (b.test on 127.0.0.3) through its MX
record and delivers there. The test reads the messages back from B's
INBOX over IMAPS and verifies their DKIM-Signature with dkimpy, which
looks the key up in the same DNS server. A reply from B's user must
reach A's INBOX the same way.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import ssl
import subprocess
from email.message import EmailMessage

import dkim
import pytest
from dns import resolver as dns_resolver

from tests.e2e.conftest import PASSWORD, require_tool
from tests.e2e.test_queue import (  # noqa: F401 - fixtures used by name
    NamedHostProcess,
    dns,
    inbox,
    two_instances,
    wait_for,
)
from tests.queue.dnsserver import DNSServer

pytestmark = pytest.mark.e2e

# `garrison dkim generate` prints the record as
# `NAME. IN TXT ( "part" "part" )`, split into 255-octet strings.
RECORD_LINE = re.compile(r'^(\S+)\.\s+IN\s+TXT\s+\(\s*((?:"[^"]*"\s*)+)\)$', re.M)


def publish_dkim_key(instance: NamedHostProcess, server: DNSServer) -> str:
    """Generate a DKIM key with the CLI and serve its TXT record; return the name."""
    output = instance.cli("dkim", "generate", instance.domain).stdout
    match = RECORD_LINE.search(output)
    assert match is not None, f"no TXT record in the output:\n{output}"
    name, strings = match.group(1), match.group(2).strip()
    assert name.endswith(f"._domainkey.{instance.domain}")
    server.zone[(name.lower(), "TXT")] = [strings]
    return name


def dkim_dns(server: DNSServer):
    """Return a dkimpy `dnsfunc` that asks the test DNS server for TXT records."""
    resolver = dns_resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        except (dns_resolver.NXDOMAIN, dns_resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return lookup


def client_context(instance: NamedHostProcess) -> ssl.SSLContext:
    """Trust the instance's self-signed certificate; its name is not checked."""
    context = ssl.create_default_context(cafile=str(instance.ca_file))
    context.check_hostname = False
    return context


def send_with_swaks(instance: NamedHostProcess, to: str, subject: str) -> None:
    """Submit with swaks: STARTTLS, then AUTH PLAIN, on the submission port."""
    swaks = require_tool("swaks", "swaks")
    result = subprocess.run(
        [
            swaks,
            "--server", instance.host,
            "--port", str(instance.port("submission")),
            "--ehlo", "client.a.test",
            "--tls",
            "--auth", "PLAIN",
            "--auth-user", instance.alice(),
            "--auth-password", PASSWORD,
            "--from", instance.alice(),
            "--to", to,
            "--header", f"Subject: {subject}",
            "--body", "Sent with swaks over STARTTLS.",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"swaks failed:\n{result.stdout}{result.stderr}"
    # swaks marks lines read over TLS with "<~": AUTH succeeded after STARTTLS.
    assert "<~  235" in result.stdout, result.stdout


def send_with_smtplib(
    instance: NamedHostProcess, to: str, subject: str, in_reply_to: str = ""
) -> None:
    """Submit with smtplib over implicit TLS on the submissions port."""
    message = EmailMessage()
    message["From"] = instance.alice()
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@{instance.domain}>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    message.set_content("Sent with smtplib over implicit TLS.\n")
    with smtplib.SMTP_SSL(
        instance.host,
        instance.port("submissions"),
        context=client_context(instance),
        timeout=10,
    ) as client:
        client.login(instance.alice(), PASSWORD)
        refused = client.send_message(message)
    assert refused == {}


def messages_with(instance: NamedHostProcess, subjects: list[str]):
    """Return a predicate: the INBOX messages once every subject has arrived."""

    def arrived() -> dict[str, bytes] | None:
        try:
            messages = inbox(instance)
        except (OSError, imaplib.IMAP4.error):
            # The next poll decides; one IMAPS poll may meet a busy server.
            return None
        found = {}
        for subject in subjects:
            matching = [m for m in messages if f"Subject: {subject}".encode() in m]
            if matching:
                found[subject] = matching[0]
        return found if len(found) == len(subjects) else None

    return arrived


def test_submitted_mail_arrives_signed(two_instances, dns: DNSServer) -> None:  # noqa: F811
    a, b = two_instances
    record_name = publish_dkim_key(a, dns)

    send_with_swaks(a, b.alice(), "signed by swaks")
    send_with_smtplib(a, b.alice(), "signed by smtplib")

    subjects = ["signed by swaks", "signed by smtplib"]
    received = wait_for(messages_with(b, subjects), 60, "both messages at B")
    selector = record_name.partition("._domainkey.")[0]
    for subject in subjects:
        message = received[subject]
        assert b"DKIM-Signature:" in message, subject
        assert f"s={selector};".encode() in message, subject
        assert b"d=a.test;" in message, subject
        assert dkim.verify(message, dnsfunc=dkim_dns(dns)), subject
        # B prepends its own trace fields; the first Return-Path is B's.
        assert message.startswith(b"Return-Path: <alice@a.test>"), subject
        # RFC 5321 §4.4: only the final delivery adds Return-Path.
        assert message.count(b"\nReturn-Path:") == 0, subject
    assert ("b.test", "MX") in dns.queries
    assert (record_name.lower(), "TXT") in dns.queries

    wait_for(
        lambda: "0 messages" in a.cli("queue", "list").stdout, 20, "A's queue empty"
    )


def test_tampered_copy_fails_verification(two_instances, dns: DNSServer) -> None:  # noqa: F811
    a, b = two_instances
    publish_dkim_key(a, dns)
    send_with_smtplib(a, b.alice(), "tamper check")
    received = wait_for(messages_with(b, ["tamper check"]), 60, "the message at B")
    message = received["tamper check"]
    assert dkim.verify(message, dnsfunc=dkim_dns(dns))

    tampered = message.replace(b"implicit TLS.", b"implicit TLS!")
    assert tampered != message
    assert not dkim.verify(tampered, dnsfunc=dkim_dns(dns))


def test_reply_returns_to_sender(two_instances, dns: DNSServer) -> None:  # noqa: F811
    a, b = two_instances
    publish_dkim_key(a, dns)
    send_with_smtplib(a, b.alice(), "question from a")
    wait_for(messages_with(b, ["question from a"]), 60, "the question at B")

    send_with_smtplib(
        b, a.alice(), "Re question from a", in_reply_to="<question-from-a@a.test>"
    )
    received = wait_for(messages_with(a, ["Re question from a"]), 60, "the reply")
    reply = received["Re question from a"]
    assert b"In-Reply-To: <question-from-a@a.test>" in reply
    assert reply.startswith(b"Return-Path: <alice@b.test>")
    assert b"Received: from mx.b.test " in reply, reply[:600]
    assert ("a.test", "MX") in dns.queries
