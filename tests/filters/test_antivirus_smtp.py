"""Anti-virus scanning over real SMTP to the in-process server and a private clamd."""

from __future__ import annotations

import base64
import io
import logging
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from garrison.config import Settings
from garrison.config.schema import AntivirusSettings
from garrison.server.runner import Runner
from tests.conftest import RunningServer
from tests.filters.conftest import EICAR, EICAR_SIGNATURE
from tests.smtpd.dialogue import Dialogue, ServerReply
from tests.smtpd.helpers import ALICE, inbox_messages

ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def av_server(settings: Settings) -> ServerFactory:
    """Return a factory that runs the server with the given [antivirus] options."""

    @asynccontextmanager
    async def run(**options: object) -> AsyncIterator[RunningServer]:
        antivirus = AntivirusSettings(enabled=True, timeout=10, **options)
        runner = Runner(settings.model_copy(update={"antivirus": antivirus}))
        await runner.start()
        try:
            yield RunningServer(runner, settings)
        finally:
            await runner.stop()

    return run


def attachment_message(
    name: str,
    payload: bytes,
    content_type: str,
    text: bytes = b"Please open the attachment.\r\n",
) -> bytes:
    """Build a multipart message: a text part, then `payload` as base64."""
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        b"From: sender@example.org\r\n"
        b"To: alice@example.test\r\n"
        b"Subject: see attachment\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n'
        b"\r\n"
        b"--b1\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        + text
        + b"--b1\r\n"
        + f"Content-Type: {content_type}\r\n".encode()
        + b"Content-Transfer-Encoding: base64\r\n"
        + f'Content-Disposition: attachment; filename="{name}"\r\n'.encode()
        + b"\r\n"
        + encoded
        + b"--b1--\r\n"
    )


def zipped(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


CLEAN = (
    b"From: sender@example.org\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: clean\r\n"
    b"\r\n"
    b"Nothing to see here.\r\n"
)


async def send_message(server: RunningServer, message: bytes) -> ServerReply:
    """Send one message to alice over the MX listener; return the DATA reply."""
    async with Dialogue.connect(server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<sender@example.org>", 250)
        await smtp.command(f"RCPT TO:<{ALICE}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(message + b".\r\n")
        reply = await smtp.read_reply()
        # The session stays usable after the verdict.
        await smtp.command("RSET", 250)
        await smtp.command("QUIT", 221)
    return reply


def scan_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("event=virus_scan ")
    ]


async def test_eicar_attachment_rejected(av_server, clamd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    message = attachment_message("eicar.com", EICAR, "application/octet-stream")
    async with av_server(clamd=clamd.address) as server:
        reply = await send_message(server, message)
        assert reply.code == 554
        assert reply.enhanced == "5.7.0"
        assert reply.lines[-1] == (
            f"5.7.0 Message rejected: virus {EICAR_SIGNATURE} found"
        )
        assert inbox_messages(server, ALICE) == []

    lines = scan_lines(caplog)
    assert len(lines) == 1
    assert "verdict=infected" in lines[0]
    assert f"signature={EICAR_SIGNATURE}" in lines[0]
    assert "queue_id=" in lines[0]
    assert "duration_ms=" in lines[0]
    assert "EICAR-STANDARD" not in caplog.text
    assert "see attachment" not in caplog.text


async def test_eicar_in_zip_rejected(av_server, clamd) -> None:
    archive = zipped("readme.txt", EICAR)
    message = attachment_message("files.zip", archive, "application/zip")
    async with av_server(clamd=clamd.address) as server:
        reply = await send_message(server, message)
        assert reply.code == 554
        assert reply.enhanced == "5.7.0"
        assert EICAR_SIGNATURE in reply.text
        assert inbox_messages(server, ALICE) == []


async def test_clean_message_delivered(av_server, clamd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    async with av_server(clamd=clamd.address) as server:
        reply = await send_message(server, CLEAN)
        assert reply.code == 250
        delivered = inbox_messages(server, ALICE)
        assert len(delivered) == 1
        assert delivered[0].endswith(CLEAN)

    lines = scan_lines(caplog)
    assert len(lines) == 1
    assert "verdict=clean" in lines[0]


async def test_large_message_scanned_from_file(av_server, clamd) -> None:
    # Over the blob store's 1 MiB in-memory limit, so the scanner streams
    # the committed blob file to clamd.
    filler = (b"y" * 76 + b"\r\n") * 20_000
    clean = CLEAN + filler
    infected = attachment_message(
        "eicar.com", EICAR, "application/octet-stream", text=filler
    )
    assert len(clean) > 1024 * 1024
    assert len(infected) > 1024 * 1024
    async with av_server(clamd=clamd.address) as server:
        reply = await send_message(server, clean)
        assert reply.code == 250
        reply = await send_message(server, infected)
        assert reply.code == 554
        assert EICAR_SIGNATURE in reply.text
        assert len(inbox_messages(server, ALICE)) == 1


async def test_clamd_stopped_defers(av_server, clamd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    clamd.stop()
    async with av_server(clamd=clamd.address) as server:
        reply = await send_message(server, CLEAN)
        assert reply.code == 451
        assert reply.enhanced == "4.7.0"
        assert inbox_messages(server, ALICE) == []

    lines = scan_lines(caplog)
    assert len(lines) == 1
    assert "verdict=error" in lines[0]
    assert "action=defer" in lines[0]


async def test_clamd_stopped_accepts_when_configured(av_server, clamd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="garrison")
    clamd.stop()
    async with av_server(clamd=clamd.address, on_error="accept") as server:
        reply = await send_message(server, CLEAN)
        assert reply.code == 250
        assert len(inbox_messages(server, ALICE)) == 1

    lines = scan_lines(caplog)
    assert len(lines) == 1
    assert "verdict=error" in lines[0]
    assert "action=accept" in lines[0]
    assert "connection failed" in lines[0]


async def test_over_stream_limit_defers(av_server, start_clamd) -> None:
    small = start_clamd(stream_max_length="1M")
    message = CLEAN + (b"z" * 76 + b"\r\n") * 20_000
    async with av_server(clamd=small.address) as server:
        reply = await send_message(server, message)
        assert reply.code == 451
        assert reply.enhanced == "4.7.0"
        assert inbox_messages(server, ALICE) == []


async def test_scanning_over_tcp(av_server, start_clamd) -> None:
    server_clamd = start_clamd(tcp=True)
    message = attachment_message("eicar.com", EICAR, "application/octet-stream")
    async with av_server(clamd=server_clamd.address) as server:
        reply = await send_message(server, message)
        assert reply.code == 554
        assert (await send_message(server, CLEAN)).code == 250


async def test_disabled_scanner_never_connects(garrison_server, caplog) -> None:
    # Scanning is off by default: EICAR is delivered and nothing is scanned.
    caplog.set_level(logging.INFO, logger="garrison")
    message = attachment_message("eicar.com", EICAR, "application/octet-stream")
    reply = await send_message(garrison_server, message)
    assert reply.code == 250
    assert scan_lines(caplog) == []
