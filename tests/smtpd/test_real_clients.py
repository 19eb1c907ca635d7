"""Real SMTP clients deliver to the server: smtplib, swaks, smtp-source.

swaks and Postfix's smtp-source come from the Debian packages `swaks` and
`postfix`; the tests that need them are skipped when they are missing.
"""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
from pathlib import Path

import pytest

from tests.smtpd.helpers import ALICE, BOB, inbox_messages, split_trace

SMTP_SOURCE = "/usr/sbin/smtp-source"

MESSAGE = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: real client\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b".a line that starts with a dot\r\n"
    b"gr\xc3\xbc\xc3\x9fe\r\n"
    b"\r\n"
    b"end\r\n"
)


def send_with_smtplib(port: int, context: ssl.SSLContext | None) -> None:
    with smtplib.SMTP(
        "127.0.0.1", port, local_hostname="client.example", timeout=10
    ) as smtp:
        smtp.ehlo()
        if context is not None:
            smtp.starttls(context=context)
            smtp.ehlo()
        refused = smtp.sendmail("sender@example.org", [ALICE, BOB], MESSAGE)
        assert refused == {}


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "starttls"])
async def test_smtplib_delivers_exact_bytes(garrison_server, use_tls: bool) -> None:
    context = garrison_server.tls_client_context() if use_tls else None
    await asyncio.to_thread(send_with_smtplib, garrison_server.port("smtp"), context)
    for address in (ALICE, BOB):
        stored = inbox_messages(garrison_server, address)
        assert len(stored) == 1
        assert split_trace(stored[0])[1] == MESSAGE


def send_to_mixed_recipients(port: int) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        return smtp.sendmail(
            "sender@example.org",
            [ALICE, "nobody@example.test", "x@elsewhere.example"],
            MESSAGE,
        )


async def test_smtplib_sees_refused_recipients(garrison_server) -> None:
    refused = await asyncio.to_thread(
        send_to_mixed_recipients, garrison_server.port("smtp")
    )
    assert refused["nobody@example.test"][0] == 550
    assert refused["x@elsewhere.example"][0] == 554
    assert len(inbox_messages(garrison_server)) == 1


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
async def test_swaks_delivers_exact_bytes(
    garrison_server, tmp_path: Path, tls: bool
) -> None:
    # swaks sends CRLF.CRLF after the data, so the file has no final CRLF.
    message_file = tmp_path / "message.eml"
    message_file.write_bytes(MESSAGE[:-2])
    args = [
        "swaks",
        "--server",
        "127.0.0.1",
        "--port",
        str(garrison_server.port("smtp")),
        "--helo",
        "swaks.example",
        "--from",
        "sender@example.org",
        "--to",
        ALICE,
        "--data",
        f"@{message_file}",
        "--timeout",
        "10",
    ]
    if tls:
        args.append("--tls")
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode(errors="replace")

    stored = inbox_messages(garrison_server)
    assert len(stored) == 1
    trace, body = split_trace(stored[0])
    assert body == MESSAGE
    assert (b" with ESMTPS " in trace[1]) == tls


@pytest.mark.skipif(
    not Path(SMTP_SOURCE).exists(), reason="postfix smtp-source is not installed"
)
async def test_smtp_source_delivers_100_messages(garrison_server) -> None:
    process = await asyncio.create_subprocess_exec(
        SMTP_SOURCE,
        "-s",
        "5",
        "-m",
        "100",
        "-l",
        "10240",
        "-M",
        "source.example",
        "-f",
        "sender@example.org",
        "-t",
        ALICE,
        f"127.0.0.1:{garrison_server.port('smtp')}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode(errors="replace")

    stored = inbox_messages(garrison_server)
    assert len(stored) == 100
    sizes = {len(split_trace(message)[1]) for message in stored}
    assert min(sizes) > 10240
