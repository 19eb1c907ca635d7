"""The queue end to end in one process: real DNS, Postfix and smtp-sink peers.

Each test runs Garrison's listeners and scheduler in-process with the
resolver pointed at the test DNS server, so routing follows real MX
lookups to 127.0.0.1, and `queue.allowed_networks` keeps every
connection on loopback.
"""

from __future__ import annotations

import email
import email.policy

from garrison.queue import OutboundEnvelope, OutboundRecipient
from garrison.queue.records import QUEUED
from garrison.server.runner import Runner
from tests.conftest import ALICE
from tests.queue.conftest import (
    REMOTE_DOMAIN,
    queue_settings_for,
    remote_zone,
    running,
    wait_until,
)

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: user@remote.test\r\n"
    b"Subject: queue test\r\n"
    b"Message-ID: <queue-test@example.test>\r\n"
    b"\r\n"
    b"Hello.\r\n"
    b".A line that starts with a dot.\r\n"
)


def inbox(runner: Runner, address: str = ALICE) -> list[bytes]:
    """Return the messages in an account's INBOX, oldest first."""
    services = runner.services
    assert services is not None
    account = services.directory.get_account(address)
    assert account is not None
    mailbox = services.store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    return [
        services.store.blobs.read(record.blob_id)
        for record in services.store.messages(mailbox.id)
    ]


async def enqueue(
    runner: Runner,
    recipients: list[str],
    sender: str = ALICE,
    params: dict[str, str] | None = None,
    rcpt_params: dict[str, str] | None = None,
    content: bytes = MESSAGE,
) -> str:
    services = runner.services
    assert services is not None
    blob = await services.store.blobs.put(content)
    envelope = OutboundEnvelope(
        sender,
        [OutboundRecipient(r, dict(rcpt_params or {})) for r in recipients],
        params or {},
    )
    return await services.queue.enqueue(envelope, blob)


def queue_empty(runner: Runner) -> bool:
    assert runner.services is not None
    return not runner.services.queue.records.messages()


def report_parts(message: bytes) -> tuple[email.message.EmailMessage, list]:
    """Parse a DSN; return it and its MIME parts."""
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return parsed, list(parsed.iter_parts())


async def test_delivers_to_postfix_through_mx(settings, dns_server, postfix_mx) -> None:
    dns = dns_server(remote_zone())
    config = queue_settings_for(settings, dns, postfix_mx.port)
    async with running(config) as runner:
        await enqueue(runner, [f"user@{REMOTE_DOMAIN}"])
        delivered = await wait_until(postfix_mx.messages, what="Postfix delivery")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")
        assert inbox(runner) == [], "a successful delivery must not bounce"

    assert len(delivered) == 1
    assert b"Subject: queue test" in delivered[0]
    # Postfix removes the dot-stuffing that the client added.
    assert b"\n.A line that starts with a dot." in delivered[0]
    assert b"Return-Path: <alice@example.test>" in delivered[0]
    assert ("remote.test", "MX") in dns.queries
    assert ("mx.remote.test", "A") in dns.queries


async def test_hard_rejection_bounces_to_local_sender(
    settings, dns_server, smtp_sink
) -> None:
    sink = smtp_sink("-f", "RCPT", "-B", "550 5.1.1 No such user here")
    config = queue_settings_for(settings, dns_server(remote_zone()), sink.port)
    async with running(config) as runner:
        await enqueue(
            runner,
            [f"nobody@{REMOTE_DOMAIN}"],
            params={"ENVID": "envelope-42", "RET": "HDRS"},
            rcpt_params={"ORCPT": "rfc822;nobody@remote.test"},
        )
        bounces = await wait_until(lambda: inbox(runner), what="a bounce in INBOX")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")

    assert len(bounces) == 1
    parsed, parts = report_parts(bounces[0])
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    assert [part.get_content_type() for part in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    status = bounces[0].decode()
    assert "Return-Path: <>" in status
    assert "Original-Envelope-Id: envelope-42" in status
    assert "Original-Recipient: rfc822;nobody@remote.test" in status
    assert "Final-Recipient: rfc822; nobody@remote.test" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 No such user here" in status
    # RET=HDRS: the headers come back, the body does not.
    assert "Subject: queue test" in status
    assert "Hello." not in status
    assert sink.messages() == []


async def test_soft_rejection_retries_warns_then_expires(
    settings, dns_server, smtp_sink
) -> None:
    sink = smtp_sink("-r", "RCPT", "-b", "451 4.3.0 Try again later")
    config = queue_settings_for(settings, dns_server(remote_zone()), sink.port)
    config = config.model_copy(
        update={
            "queue": config.queue.model_copy(
                update={"max_lifetime": 4.0, "delay_warning_after": 1.0}
            )
        }
    )
    async with running(config) as runner:
        queue_id = await enqueue(runner, [f"later@{REMOTE_DOMAIN}"])
        warning = await wait_until(lambda: inbox(runner), what="a delay warning")
        assert runner.services is not None
        queued = runner.services.queue.records.load(queue_id)
        assert queued is not None
        assert queued.recipients[0].status == QUEUED
        assert queued.recipients[0].attempts >= 2
        assert queued.recipients[0].last_code == 451
        reports = await wait_until(
            lambda: len(inbox(runner)) >= 2 and inbox(runner),
            timeout=30,
            what="the expiry bounce",
        )
        await wait_until(lambda: queue_empty(runner), what="an empty queue")

    assert "Action: delayed" in warning[0].decode()
    assert "Will-Retry-Until:" in warning[0].decode()
    final = reports[1].decode()
    assert "Action: failed" in final
    assert "Status: 4.4.7" in final
    assert "451 4.3.0 Try again later" in final
    # Without RET=HDRS, a bounce returns the whole message.
    assert "Content-Type: message/rfc822" in final
    assert "Hello." in final


async def test_null_sender_is_never_bounced(settings, dns_server, smtp_sink) -> None:
    sink = smtp_sink("-f", "RCPT", "-B", "550 5.1.1 No such user here")
    config = queue_settings_for(settings, dns_server(remote_zone()), sink.port)
    async with running(config) as runner:
        await enqueue(runner, [f"nobody@{REMOTE_DOMAIN}"], sender="")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")
        assert inbox(runner) == []


async def test_null_mx_fails_at_once(settings, dns_server) -> None:
    dns = dns_server(remote_zone())
    config = queue_settings_for(settings, dns, 9)
    async with running(config) as runner:
        await enqueue(runner, ["user@nullmx.test"])
        bounces = await wait_until(lambda: inbox(runner), what="a bounce")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")
    text = bounces[0].decode()
    assert "Status: 5.1.10" in text
    assert "null MX" in text
    assert ("nullmx.test", "A") not in dns.queries


async def test_non_loopback_destination_is_deferred(settings, dns_server) -> None:
    config = queue_settings_for(settings, dns_server(remote_zone()), 25)
    async with running(config) as runner:
        queue_id = await enqueue(runner, ["user@public.test"])
        assert runner.services is not None
        records = runner.services.queue.records

        def attempted():
            message = records.load(queue_id)
            return (
                message is not None and message.recipients[0].attempts > 0 and message
            )

        message = await wait_until(attempted, what="a first attempt")
    recipient = message.recipients[0]
    assert recipient.status == QUEUED
    assert recipient.last_code == 451
    assert "allowed_networks" in (recipient.last_reply or "")


async def test_implicit_mx_and_dsn_parameters_relayed(
    settings, dns_server, smtp_sink
) -> None:
    sink = smtp_sink()
    config = queue_settings_for(settings, dns_server(remote_zone()), sink.port)
    async with running(config) as runner:
        await enqueue(
            runner,
            ["user@implicit.test"],
            params={"ENVID": "id+1", "RET": "FULL"},
            rcpt_params={
                "NOTIFY": "FAILURE,DELAY",
                "ORCPT": "rfc822;user@implicit.test",
            },
        )
        dumps = await wait_until(sink.messages, what="delivery to smtp-sink")
        await wait_until(lambda: queue_empty(runner), what="an empty queue")
    dump = dumps[0].decode()
    # smtp-sink writes the MAIL and RCPT arguments it received (it offers DSN).
    # smtp-sink offers no SIZE, so MAIL carries only the DSN parameters.
    assert "X-Mail-Args: <alice@example.test> RET=FULL ENVID=id+2B1\n" in dump
    assert "X-Rcpt-Args: <user@implicit.test> NOTIFY=FAILURE,DELAY" in dump
    assert "ORCPT=rfc822;user@implicit.test" in dump
    assert ".A line that starts with a dot." in dump
