"""Real clients submit mail: swaks and Python's smtplib, STARTTLS and implicit TLS.

swaks comes from the Debian package of the same name
(scripts/install-test-deps.sh); without it these tests skip, or fail
under CI=true.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path

import pytest

from tests.conftest import ALICE, BOB, PASSWORD
from tests.e2e.conftest import require_tool
from tests.smtpd.helpers import inbox_messages

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: from a real client\r\n"
    b"\r\n"
    b"hello\r\n"
)


async def run_swaks(port: int, *options: str) -> tuple[int, str]:
    swaks = require_tool("swaks", "swaks")
    process = await asyncio.create_subprocess_exec(
        swaks,
        "--server",
        "127.0.0.1",
        "--port",
        str(port),
        "--helo",
        "swaks.example",
        "--timeout",
        "10",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize(
    ("listener", "tls_option"),
    [("submission", "--tls"), ("submissions", "--tls-on-connect")],
    ids=["starttls on 587", "implicit tls on 465"],
)
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_swaks_submits_with_auth(
    submission_server, tmp_path: Path, listener, tls_option, mechanism
) -> None:
    message_file = tmp_path / "message.eml"
    # swaks ends the data with CRLF.CRLF itself.
    message_file.write_bytes(MESSAGE[:-2])
    status, output = await run_swaks(
        submission_server.port(listener),
        tls_option,
        "--auth",
        mechanism,
        "--auth-user",
        ALICE,
        "--auth-password",
        PASSWORD,
        "--from",
        ALICE,
        "--to",
        BOB,
        "--data",
        f"@{message_file}",
    )
    assert status == 0, output
    assert "235 2.7.0" in output
    stored = inbox_messages(submission_server, BOB)
    assert len(stored) == 1
    assert stored[0].endswith(MESSAGE)
    assert b" with ESMTPSA" in stored[0]


async def test_swaks_wrong_password(submission_server) -> None:
    status, output = await run_swaks(
        submission_server.port("submission"),
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        ALICE,
        "--auth-password",
        "not-the-password",
        "--from",
        ALICE,
        "--to",
        BOB,
    )
    assert status != 0
    assert "535 5.7.8" in output
    assert inbox_messages(submission_server, BOB) == []


async def test_swaks_spoofed_sender(submission_server) -> None:
    status, output = await run_swaks(
        submission_server.port("submissions"),
        "--tls-on-connect",
        "--auth",
        "PLAIN",
        "--auth-user",
        ALICE,
        "--auth-password",
        PASSWORD,
        "--from",
        BOB,
        "--to",
        BOB,
    )
    assert status != 0
    assert "553 5.7.1" in output
    assert inbox_messages(submission_server, BOB) == []


async def test_swaks_unauthenticated_relay(submission_server) -> None:
    status, output = await run_swaks(
        submission_server.port("smtp"),
        "--tls",
        "--from",
        "someone@remote.example",
        "--to",
        "other@remote.example",
    )
    assert status != 0
    assert "554 5.7.1" in output
    assert submission_server.services.delivery.outbound.handed_over == []


def submit_with_smtplib(port: int, context: ssl.SSLContext, implicit: bool) -> None:
    if implicit:
        client = smtplib.SMTP_SSL("127.0.0.1", port, context=context, timeout=10)
    else:
        client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    with client as smtp:
        smtp.ehlo("client.example")
        if not implicit:
            # Plaintext AUTH from loopback is off here, so AUTH needs TLS.
            assert not smtp.has_extn("auth")
            smtp.starttls(context=context)
            smtp.ehlo("client.example")
        assert smtp.has_extn("auth")
        smtp.login(ALICE, PASSWORD)
        assert smtp.sendmail(ALICE, [BOB], MESSAGE) == {}


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit tls"])
async def test_smtplib_submits(submission_server, implicit: bool) -> None:
    port = submission_server.port("submissions" if implicit else "submission")
    context = submission_server.tls_client_context()
    await asyncio.to_thread(submit_with_smtplib, port, context, implicit)
    stored = inbox_messages(submission_server, BOB)
    assert len(stored) == 1
    assert stored[0].endswith(MESSAGE)


async def test_smtplib_auth_before_tls_refused(submission_server) -> None:
    def attempt() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", submission_server.port("submission")) as smtp:
            smtp.ehlo("client.example")
            return smtp.docmd("AUTH", "PLAIN")

    code, text = await asyncio.to_thread(attempt)
    assert code == 538
    assert text.startswith(b"5.7.11")
