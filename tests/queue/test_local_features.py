"""Catch-all, sub-addresses, groups, forwarding with SRS and mail loops.

Mail arrives over SMTP at Garrison's MX listener; forwarded copies leave
through the queue to a private Postfix found by MX lookup.
"""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from tests.conftest import ALICE, BOB
from tests.queue.conftest import queue_settings_for, remote_zone, running, wait_until
from tests.queue.test_delivery import inbox

MESSAGE = b"From: outsider@origin.example\r\nSubject: features\r\n\r\nHi.\r\n"


async def send(port: int, recipients: list[str], content: bytes = MESSAGE) -> None:
    """Send with smtplib in a thread, because the server runs on this loop."""

    def blocking() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("outsider@origin.example", recipients, content)

    await asyncio.to_thread(blocking)


async def test_subaddress_and_catch_all(settings, dns_server) -> None:
    config = queue_settings_for(settings, dns_server(remote_zone()), 9)
    async with running(config, run_queue=False) as runner:
        assert runner.services is not None
        runner.services.directory.add_alias("@example.test", BOB)
        await send(
            runner.port("smtp"), ["alice+lists@example.test", "random@example.test"]
        )
        assert len(inbox(runner, ALICE)) == 1
        assert len(inbox(runner, BOB)) == 1


async def test_group_forwards_with_srs(settings, dns_server, postfix_mx) -> None:
    config = queue_settings_for(settings, dns_server(remote_zone()), postfix_mx.port)
    async with running(config) as runner:
        assert runner.services is not None
        directory = runner.services.directory
        for member in (ALICE, BOB, "member@remote.test"):
            directory.add_alias("team@example.test", member)
        await send(runner.port("smtp"), ["team@example.test"])
        forwarded = await wait_until(postfix_mx.messages, what="the forwarded copy")
        await wait_until(lambda: inbox(runner, ALICE), what="alice's copy")
        assert len(inbox(runner, BOB)) == 1
        srs_local = (
            forwarded[0].split(b"Return-Path: <", 1)[1].split(b">", 1)[0].decode()
        )
        # A bounce to the rewritten sender goes back to the original one.
        resolution = directory.resolve_recipient(srs_local)
    assert srs_local.startswith("SRS0=")
    assert srs_local.endswith("=origin.example=outsider@example.test")
    assert resolution.forwards == ("outsider@origin.example",)
    assert b"Subject: features" in forwarded[0]


async def test_mail_loop_is_rejected(settings, dns_server) -> None:
    config = queue_settings_for(settings, dns_server(remote_zone()), 9)
    hops = config.queue.max_hops
    looping = (
        b"".join(
            b"Received: from hop%d.example by hop%d.example;"
            b" Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1)
            for i in range(hops)
        )
        + MESSAGE
    )
    async with running(config, run_queue=False) as runner:
        with pytest.raises(smtplib.SMTPDataError) as raised:
            await send(runner.port("smtp"), [ALICE], looping)
        assert raised.value.smtp_code == 554
        assert b"5.4.6" in raised.value.smtp_error
        assert inbox(runner, ALICE) == []
        # One hop fewer is accepted (Garrison adds its own Received).
        await send(runner.port("smtp"), [ALICE], looping.split(b"\r\n", 1)[1])
        assert len(inbox(runner, ALICE)) == 1
