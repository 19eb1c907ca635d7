"""rspamd checks over real SMTP to the in-process server and a private rspamd."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from garrison.config import Settings
from garrison.config.schema import RspamdSettings
from garrison.filters.chain import checks_from_settings
from garrison.server.runner import Runner
from tests.conftest import RunningServer
from tests.filters.rspamd_server import GREYLIST_MARKER, GTUBE, SPAM_MARKER, free_port
from tests.filters.test_antivirus_smtp import send_message
from tests.filters.test_verdict import mailbox_messages
from tests.smtpd.helpers import ALICE, inbox_messages

ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def rspamd_server(settings: Settings) -> ServerFactory:
    """Return a factory that runs the server with the given [rspamd] options."""

    @asynccontextmanager
    async def run(**options: object) -> AsyncIterator[RunningServer]:
        options.setdefault("timeout", 10)
        section = RspamdSettings(enabled=True, **options)
        # The built-in spam check is off, so rspamd alone decides.
        spam = settings.spam.model_copy(update={"enabled": False})
        runner = Runner(settings.model_copy(update={"rspamd": section, "spam": spam}))
        await runner.start()
        try:
            yield RunningServer(runner, settings)
        finally:
            await runner.stop()

    return run


def message(subject: str, body: bytes = b"Hello Alice, lunch at noon?\r\n") -> bytes:
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: Alice <alice@example.test>\r\n"
        b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
        b"Message-ID: <m1@example.org>\r\n"
        + f"Subject: {subject}\r\n".encode()
        + b"X-Spamd-Result: default: False [-100.00 / 15.00]; FORGED(-100.00)\r\n"
        b"X-Spam: No, forged by the sender\r\n"
        b"\r\n" + body
    )


def header_of(stored: bytes) -> bytes:
    return stored.split(b"\r\n\r\n", 1)[0]


def rspamd_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("event=rspamd ")
    ]


async def test_gtube_rejected_in_dialogue(rspamd_server, shared_rspamd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    async with rspamd_server(url=shared_rspamd.url) as server:
        reply = await send_message(server, message("offer", GTUBE + b"\r\n"))
        assert reply.code == 554
        assert reply.enhanced == "5.7.1"
        assert reply.lines[-1] == "5.7.1 Message rejected as spam"
        assert "GTUBE" not in reply.text
        assert inbox_messages(server, ALICE) == []

    [line] = rspamd_lines(caplog)
    assert "action=reject" in line
    assert "queue_id=" in line
    assert "GTUBE-STANDARD" not in caplog.text


async def test_normal_message_gets_spam_fields(rspamd_server, shared_rspamd) -> None:
    sent = message("lunch")
    async with rspamd_server(url=shared_rspamd.url) as server:
        reply = await send_message(server, sent)
        assert reply.code == 250
        [stored] = inbox_messages(server, ALICE)
        assert mailbox_messages(server, "Junk") == []

    header = header_of(stored)
    # RCVD_NO_TLS_LAST: our Received field shows no TLS.
    assert b"X-Spamd-Result: default: False [0.10 / 15.00];\r\n" in header
    assert b"\tRCVD_NO_TLS_LAST(0.10);\r\n" in header
    assert b"\tTO_MATCH_ENVRCPT_ALL(0.00)" in header
    assert b"X-Rspamd-Action: no action\r\n" in header
    assert b"X-Spam:" not in header
    assert b"FORGED" not in header
    assert b"forged by the sender" not in header
    assert stored.endswith(b"\r\n\r\nHello Alice, lunch at noon?\r\n")


async def test_add_header_action_files_into_junk(rspamd_server, shared_rspamd) -> None:
    async with rspamd_server(url=shared_rspamd.url) as server:
        reply = await send_message(server, message(f"deal {SPAM_MARKER}"))
        assert reply.code == 250
        assert inbox_messages(server, ALICE) == []
        [stored] = mailbox_messages(server, "Junk")

    header = header_of(stored)
    assert b"X-Spamd-Result: default: True [7.10 / 15.00];\r\n" in header
    assert b"\tGARRISON_TEST_SPAM(7.00);\r\n" in header
    assert b"X-Rspamd-Action: add header\r\n" in header
    assert b"X-Spam: Yes\r\n" in header


async def test_add_header_without_junk_keeps_inbox(
    rspamd_server, shared_rspamd
) -> None:
    async with rspamd_server(url=shared_rspamd.url, junk=False) as server:
        reply = await send_message(server, message(f"deal {SPAM_MARKER}"))
        assert reply.code == 250
        [stored] = inbox_messages(server, ALICE)
        assert mailbox_messages(server, "Junk") == []
    assert b"X-Spam: Yes\r\n" in header_of(stored)


async def test_headers_off_leaves_message_unmarked(
    rspamd_server, shared_rspamd
) -> None:
    async with rspamd_server(url=shared_rspamd.url, headers=False) as server:
        reply = await send_message(server, message("lunch"))
        assert reply.code == 250
        [stored] = inbox_messages(server, ALICE)
    header = header_of(stored)
    assert b"X-Rspamd-Action" not in header
    # Not ours to remove when we do not write our own.
    assert b"FORGED(-100.00)" in header
    assert b"forged by the sender" in header


async def test_greylist_action_defers(rspamd_server, shared_rspamd) -> None:
    async with rspamd_server(url=shared_rspamd.url) as server:
        reply = await send_message(server, message(f"hi {GREYLIST_MARKER}"))
        assert reply.code == 451
        assert reply.enhanced == "4.7.1"
        assert inbox_messages(server, ALICE) == []


async def test_rspamd_down_defers(rspamd_server, rspamd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    rspamd.stop()
    async with rspamd_server(url=rspamd.url) as server:
        reply = await send_message(server, message("lunch"))
        assert reply.code == 451
        assert reply.enhanced == "4.7.1"
        assert inbox_messages(server, ALICE) == []

    [line] = rspamd_lines(caplog)
    assert "action=defer" in line
    assert "error=" in line


async def test_rspamd_down_accepts_when_configured(rspamd_server, rspamd) -> None:
    rspamd.stop()
    async with rspamd_server(url=rspamd.url, on_error="accept") as server:
        reply = await send_message(server, message("lunch"))
        assert reply.code == 250
        [stored] = inbox_messages(server, ALICE)
    assert b"X-Rspamd-Action" not in header_of(stored)


async def test_nothing_listening_defers(rspamd_server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with rspamd_server(url=url, timeout=2) as server:
        reply = await send_message(server, message("lunch"))
        assert reply.code == 451
        assert reply.enhanced == "4.7.1"


async def test_large_message_streamed_from_file(rspamd_server, shared_rspamd) -> None:
    # Over the blob store's 1 MiB in-memory limit, so the check streams the
    # committed blob file to rspamd.
    # rspamd replies only after it has read Content-Length bytes, so any
    # reply shows that the whole body arrived.
    filler = (b"y" * 76 + b"\r\n") * 20_000
    spam = message(f"offer {SPAM_MARKER}", filler)
    ham = message("lunch", filler)
    assert len(ham) > 1024 * 1024
    async with rspamd_server(url=shared_rspamd.url) as server:
        reply = await send_message(server, spam)
        assert reply.code == 250
        [junk] = mailbox_messages(server, "Junk")
        reply = await send_message(server, ham)
        assert reply.code == 250
        [stored] = inbox_messages(server, ALICE)
    assert b"X-Rspamd-Action: add header\r\n" in header_of(junk)
    assert b"X-Rspamd-Action: no action\r\n" in header_of(stored)
    assert stored.endswith(filler)


async def test_oversized_message_not_checked(
    rspamd_server, shared_rspamd, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    async with rspamd_server(url=shared_rspamd.url, max_size=1000) as server:
        body = GTUBE + b"\r\n" + (b"x" * 70 + b"\r\n") * 30
        reply = await send_message(server, message("offer", body))
        assert reply.code == 250
        [stored] = inbox_messages(server, ALICE)
    assert b"X-Rspamd-Action" not in header_of(stored)
    [line] = rspamd_lines(caplog)
    assert "action=skipped" in line


def test_chain_has_rspamd_last_when_enabled(settings: Settings, services) -> None:
    disabled = checks_from_settings(settings, services.store)
    assert "rspamd" not in [check.name for check in disabled.checks]

    enabled = settings.model_copy(update={"rspamd": RspamdSettings(enabled=True)})
    chain = checks_from_settings(enabled, services.store)
    assert [check.name for check in chain.checks][-1] == "rspamd"
