"""Success DSNs (RFC 3461 NOTIFY=SUCCESS) for submitted mail.

alice submits over implicit TLS with NOTIFY=SUCCESS, and the report must
reach her INBOX: "delivered" when a local mailbox takes the message,
"relayed" when the next hop (Postfix's smtp-sink with -N) offers no DSN.
A next hop that offers DSN gets NOTIFY passed on and sends the report
itself, so Garrison sends none.
"""

from __future__ import annotations

import email
import email.policy

from garrison.config import ListenerSettings
from tests.conftest import ALICE, BOB, RunningServer
from tests.queue.conftest import (
    REMOTE_DOMAIN,
    queue_settings_for,
    remote_zone,
    running,
    wait_until,
)
from tests.queue.test_delivery import inbox, queue_empty
from tests.submission.conftest import ask, logged_in

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"Subject: tell me when it arrives\r\n"
    b"\r\n"
    b"Please confirm.\r\n"
)


def submission_settings(settings, dns, smtp_port: int):
    return queue_settings_for(settings, dns, smtp_port).model_copy(
        update={
            "listeners": [
                ListenerSettings(
                    name="submissions", protocol="submission", port=0, tls="implicit"
                )
            ]
        }
    )


async def submit_with_notify(runner, config, recipient: str) -> None:
    """Submit MESSAGE as alice with NOTIFY=SUCCESS and an ORCPT."""
    server = RunningServer(runner, config)
    async with logged_in(server) as smtp:
        reply = await ask(smtp, f"MAIL FROM:<{ALICE}> ENVID=check-1")
        assert reply.code == 250, reply
        reply = await ask(
            smtp, f"RCPT TO:<{recipient}> NOTIFY=SUCCESS ORCPT=rfc822;{recipient}"
        )
        assert reply.code == 250, reply
        reply = await ask(smtp, "DATA")
        assert reply.code == 354, reply
        await smtp.send(MESSAGE + b".\r\n")
        reply = await smtp.read_reply()
        assert reply.code == 250, reply


def reports(runner) -> list[bytes]:
    return [m for m in inbox(runner) if b"multipart/report" in m]


def delivery_status(report: bytes) -> str:
    parsed = email.message_from_bytes(report, policy=email.policy.default)
    parts = list(parsed.iter_parts())
    assert parsed.get_param("report-type") == "delivery-status"
    assert parts[1].get_content_type() == "message/delivery-status"
    return report.decode()


async def test_local_delivery_reports_delivered(settings, dns_server) -> None:
    config = submission_settings(settings, dns_server(remote_zone()), 9)
    async with running(config) as runner:
        await submit_with_notify(runner, config, BOB)
        found = await wait_until(lambda: reports(runner), what="a success DSN")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")
        delivered = inbox(runner, BOB)

    assert len(found) == 1
    text = delivery_status(found[0])
    assert "Return-Path: <>" in text
    assert "Subject: Successful Mail Delivery Report" in text
    assert f"Final-Recipient: rfc822; {BOB}" in text
    assert f"Original-Recipient: rfc822;{BOB}" in text
    assert "Original-Envelope-Id: check-1" in text
    assert "Action: delivered" in text
    assert "Status: 2.0.0" in text
    assert "Remote-MTA:" not in text
    # A success report returns the header section, never the body.
    assert "Subject: tell me when it arrives" in text
    assert "Please confirm." not in text

    assert len(delivered) == 1
    assert b"Please confirm." in delivered[0]
    assert delivered[0].count(b"Return-Path:") == 1


async def test_next_hop_without_dsn_reports_relayed(
    settings,
    dns_server,
    smtp_sink,
) -> None:
    sink = smtp_sink("-N")
    config = submission_settings(settings, dns_server(remote_zone()), sink.port)
    recipient = f"user@{REMOTE_DOMAIN}"
    async with running(config) as runner:
        await submit_with_notify(runner, config, recipient)
        found = await wait_until(lambda: reports(runner), what="a relayed DSN")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")

    assert len(found) == 1
    text = delivery_status(found[0])
    assert "Subject: Mail Relayed Report" in text
    assert f"Final-Recipient: rfc822; {recipient}" in text
    assert f"Original-Recipient: rfc822;{recipient}" in text
    assert "Action: relayed" in text
    assert "Status: 2.0.0" in text
    assert "Remote-MTA: dns; mx.remote.test" in text
    dumps = sink.messages()
    assert len(dumps) == 1
    # Without DSN at the next hop, MAIL and RCPT carry no DSN parameters.
    assert "NOTIFY=" not in dumps[0].decode()


async def test_next_hop_with_dsn_gets_notify(
    settings,
    dns_server,
    smtp_sink,
) -> None:
    sink = smtp_sink()
    config = submission_settings(settings, dns_server(remote_zone()), sink.port)
    recipient = f"user@{REMOTE_DOMAIN}"
    async with running(config) as runner:
        await submit_with_notify(runner, config, recipient)
        dumps = await wait_until(sink.messages, what="delivery to smtp-sink")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")
        assert reports(runner) == []

    dump = dumps[0].decode()
    assert f"X-Rcpt-Args: <{recipient}> NOTIFY=SUCCESS" in dump
    assert f"ORCPT=rfc822;{recipient}" in dump
    assert "ENVID=check-1" in dump
