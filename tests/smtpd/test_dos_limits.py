"""Denial-of-service limits: early talkers, pipelining without PIPELINING,
session duration, minimum data rate and the error tarpit.

Each test lowers one `[smtp]` limit on the running server so that a real
loopback client exceeds it within a second.
"""

from __future__ import annotations

import asyncio
import socket
import logging
import time

from tests.smtpd.dialogue import Dialogue
from tests.smtpd.helpers import ALICE, inbox_messages


def configure(garrison_server, monkeypatch, **values) -> None:
    """Override `[smtp]` settings of the running SMTP listener."""
    server = next(
        protocol
        for listener, _, protocol in garrison_server.runner.servers
        if listener.name == "smtp"
    )
    smtp_settings = server.settings.smtp.model_copy(update=values)
    monkeypatch.setattr(
        server, "settings", server.settings.model_copy(update={"smtp": smtp_settings})
    )


def limit_lines(caplog, reason: str) -> list[str]:
    """Return the `event=limit` log lines with the given reason."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("event=limit")
        and f"reason={reason}" in record.getMessage()
    ]


async def open_transaction(smtp: Dialogue) -> None:
    await smtp.hello()
    await smtp.command("MAIL FROM:<s@example.org>", 250, "2.1.0")
    await smtp.command(f"RCPT TO:<{ALICE}>", 250, "2.1.5")


# -- early talkers -------------------------------------------------------------


async def test_input_before_greeting_rejected(
    garrison_server, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    configure(garrison_server, monkeypatch, greeting_delay=0.3)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.send("EHLO early.example\r\n")
        reply = await smtp.expect(554, "5.5.1")
        assert "greeting" in reply.text
        await smtp.expect_closed()
    assert len(limit_lines(caplog, "early_talker")) == 1


async def test_patient_client_greeted_after_delay(garrison_server, monkeypatch) -> None:
    configure(garrison_server, monkeypatch, greeting_delay=0.3)
    started = time.monotonic()
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        assert time.monotonic() - started >= 0.3
        await smtp.command("EHLO patient.example", 250)
        await smtp.command("QUIT", 221)


# -- pipelining without PIPELINING ---------------------------------------------


async def test_pipelining_after_helo_rejected(garrison_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("HELO client.example", 250)
        await smtp.send(f"MAIL FROM:<s@example.org>\r\nRCPT TO:<{ALICE}>\r\n")
        await smtp.expect(554, "5.5.1")
        await smtp.expect_closed()
    lines = limit_lines(caplog, "pipelining")
    assert len(lines) == 1
    assert "command=MAIL" in lines[0]


async def test_helo_with_pipelined_mail_rejected(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.send("HELO client.example\r\nMAIL FROM:<s@example.org>\r\n")
        await smtp.expect(554, "5.5.1")
        await smtp.expect_closed()


async def test_pipelining_before_ehlo_rejected(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.send("NOOP\r\nEHLO client.example\r\n")
        await smtp.expect(554, "5.5.1")
        await smtp.expect_closed()


async def test_helo_session_without_pipelining_works(garrison_server) -> None:
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.expect(220)
        await smtp.command("HELO client.example", 250)
        await smtp.command("MAIL FROM:<s@example.org>", 250, "2.1.0")
        await smtp.command(f"RCPT TO:<{ALICE}>", 250, "2.1.5")
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: helo\r\n\r\nbody\r\n.\r\n")
        await smtp.expect(250, "2.0.0")
        await smtp.command("QUIT", 221)
    assert len(inbox_messages(garrison_server)) == 1


# -- session duration and data rate --------------------------------------------


async def test_session_duration_limit_closes(
    garrison_server, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    configure(garrison_server, monkeypatch, max_session_duration=0.5)
    started = time.monotonic()
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        reply = await smtp.expect(421, "4.4.2", timeout=5)
        assert "session duration" in reply.text
        await smtp.expect_closed()
    # command_timeout is 300 s, so only the session limit can end it this soon.
    assert time.monotonic() - started < 3
    assert len(limit_lines(caplog, "max_session_duration")) == 1


async def test_session_duration_limit_during_data(garrison_server, monkeypatch) -> None:
    configure(garrison_server, monkeypatch, max_session_duration=0.8, min_data_rate=0)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: slow\r\n\r\n")
        await smtp.expect(421, "4.4.2", timeout=5)
        await smtp.expect_closed()
    assert inbox_messages(garrison_server) == []


async def test_slow_data_closes(garrison_server, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    configure(garrison_server, monkeypatch, min_data_rate=1000, data_rate_window=0.4)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: slow\r\n\r\n")
        # 10 bytes every 0.1 s is 100 bytes/s, a tenth of the minimum.
        reply = None
        for _ in range(30):
            try:
                await smtp.send(b"x" * 8 + b"\r\n")
            except ConnectionError:
                break
            try:
                reply = await smtp.read_reply(timeout=0.1)
                break
            except TimeoutError:
                continue
        assert reply is not None, "the server did not close the slow session"
        assert reply.code == 421
        assert reply.enhanced == "4.4.2"
        assert "Data rate" in reply.text
    assert inbox_messages(garrison_server) == []
    assert len(limit_lines(caplog, "min_data_rate")) == 1


async def test_slow_bdat_chunk_closes(garrison_server, monkeypatch) -> None:
    configure(garrison_server, monkeypatch, min_data_rate=1000, data_rate_window=0.4)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.send(b"BDAT 5000 LAST\r\nSubject: slow\r\n\r\n")
        await smtp.expect(421, "4.4.2", timeout=5)
        await smtp.expect_closed()
    assert inbox_messages(garrison_server) == []


async def test_data_above_minimum_rate_accepted(
    garrison_server, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    configure(garrison_server, monkeypatch, min_data_rate=1000, data_rate_window=0.3)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await open_transaction(smtp)
        await smtp.command("DATA", 354)
        await smtp.send(b"Subject: steady\r\n\r\n")
        # 1000 bytes every 0.1 s is 10000 bytes/s, over several windows.
        for _ in range(10):
            await smtp.send((b"y" * 98 + b"\r\n") * 10)
            await asyncio.sleep(0.1)
        await smtp.send(b".\r\n")
        await smtp.expect(250, "2.0.0")
    assert len(inbox_messages(garrison_server)) == 1
    assert limit_lines(caplog, "min_data_rate") == []


# -- tarpit --------------------------------------------------------------------


async def test_tarpit_delays_later_errors(garrison_server, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    configure(
        garrison_server,
        monkeypatch,
        tarpit_after_errors=2,
        tarpit_delay=0.5,
        max_errors=5,
    )
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.hello()
        for _ in range(2):
            started = time.monotonic()
            await smtp.command("BOGUS", 500, "5.5.1")
            assert time.monotonic() - started < 0.4
        for _ in range(2):
            started = time.monotonic()
            await smtp.command("BOGUS", 500, "5.5.1")
            assert time.monotonic() - started >= 0.5
        # A command that succeeds is not delayed.
        started = time.monotonic()
        await smtp.command("NOOP", 250)
        assert time.monotonic() - started < 0.4
        # The fifth error reaches max_errors and closes the session.
        await smtp.command("BOGUS", 500, "5.5.1")
        await smtp.expect(421, "4.7.0")
        await smtp.expect_closed()
    assert len(limit_lines(caplog, "tarpit_after_errors")) == 1


async def test_client_not_reading_replies_closed(
    garrison_server, monkeypatch, caplog
) -> None:
    """A client that pipelines commands and never reads cannot outlast the deadline."""
    caplog.set_level(logging.INFO, logger="garrison.smtpd")
    configure(garrison_server, monkeypatch, max_session_duration=1.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    await loop.sock_connect(sock, ("127.0.0.1", garrison_server.port("smtp")))
    # Each EHLO is answered with a multi-line reply ten times its size, so
    # the replies fill the socket buffers while the commands still fit.
    batch = b"EHLO client.example\r\n" * 2000
    try:
        while not limit_lines(caplog, "max_session_duration"):
            assert time.monotonic() - started < 10, "the session outlasted its deadline"
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, batch), 0.5)
            except TimeoutError:
                continue
    except ConnectionError:
        pass
    finally:
        sock.close()
    for _ in range(50):
        if limit_lines(caplog, "max_session_duration"):
            break
        await asyncio.sleep(0.1)
    assert len(limit_lines(caplog, "max_session_duration")) == 1


async def test_slow_drip_command_times_out(garrison_server, monkeypatch) -> None:
    """The command timeout covers the whole line, not each byte of it."""
    configure(garrison_server, monkeypatch, command_timeout=1.0)
    async with Dialogue.connect(garrison_server.port("smtp")) as smtp:
        await smtp.read_reply()
        started = time.monotonic()
        reply = None
        for byte in b"NOOP\r\n":
            try:
                await smtp.send(bytes([byte]))
            except ConnectionError:
                break
            try:
                reply = await smtp.read_reply(timeout=0.4)
                break
            except TimeoutError:
                continue
        assert reply is not None, "the server waited for the whole slow line"
        assert (reply.code, reply.enhanced) == (421, "4.4.2")
        assert time.monotonic() - started < 2.5
