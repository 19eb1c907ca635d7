"""Sender authentication in the real `garrison serve`, with its worker processes.

The setup comes from `garrison init`, with `[authentication] enabled = true`
and DNS pointed at the test DNS server on 127.0.0.1, which serves the SPF,
DMARC and DKIM key records of the sender domains. smtplib sends over the
MX listener, and the test reads alice's INBOX back over IMAPS.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import ssl
from collections.abc import Iterator

import pytest

from garrison.dkim.keys import SigningKey
from tests.e2e.conftest import ALICE, PASSWORD, GarrisonProcess
from tests.filters.authzone import (
    RSA_KEY,
    SENDER_ZONE,
    dkim_sign,
    message_from,
    publish_key,
)
from tests.queue.dnsserver import DNSServer

pytestmark = pytest.mark.e2e

KEY = SigningKey("pass.example", "sel", "rsa", RSA_KEY)


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    zone = dict(SENDER_ZONE)
    publish_key(zone, KEY)
    server = DNSServer(zone).start()
    yield server
    server.stop()


@pytest.fixture
def checking_process(
    garrison_setup: GarrisonProcess, dns: DNSServer
) -> Iterator[GarrisonProcess]:
    """`garrison serve` with the checks on, stopped with SIGTERM at teardown."""
    text, count = re.subn(
        r"^nameservers = .*$",
        f'nameservers = ["{dns.address}"]',
        garrison_setup.config.read_text(),
        count=1,
        flags=re.M,
    )
    assert count == 1, "no nameservers line in the generated config"
    head, marker, section = text.partition("\n[authentication]\n")
    assert marker, "no [authentication] section in the generated config"
    # The first `enabled` line after the header is the section's own.
    section = section.replace("\nenabled = false\n", "\nenabled = true\n", 1)
    garrison_setup.config.write_text(head + marker + section)
    garrison_setup.start()
    yield garrison_setup
    status = garrison_setup.stop()
    assert status == 0, f"garrison serve exited {status}:\n{garrison_setup.log()}"


def inbox(process: GarrisonProcess) -> list[bytes]:
    context = ssl.create_default_context(cafile=str(process.ca_file))
    context.check_hostname = False
    with imaplib.IMAP4_SSL(
        "127.0.0.1", process.port("imaps"), ssl_context=context
    ) as imap:
        imap.login(ALICE, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [item[1] for item in data if isinstance(item, tuple)]


def test_checks_in_served_process(checking_process: GarrisonProcess) -> None:
    port = checking_process.port("smtp")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(
            "sender@pass.example",
            [ALICE],
            dkim_sign(KEY, message_from("Sender <sender@pass.example>", "signed")),
        )
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(
                "sender@reject.example",
                [ALICE],
                message_from("sender@reject.example", "forged"),
            )
    assert refused.value.smtp_code == 550
    assert b"DMARC" in refused.value.smtp_error

    [stored] = inbox(checking_process)
    header = stored.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ")
    assert b"Subject: signed" in header
    assert b"spf=pass smtp.mailfrom=pass.example" in header
    assert b"dkim=pass header.d=pass.example header.s=sel" in header
    assert b"dmarc=pass (p=reject dis=none) header.from=pass.example" in header
    assert b"Received-SPF: Pass" in header
    log = checking_process.log()
    assert "event=dmarc " in log
    assert "action=reject" in log
