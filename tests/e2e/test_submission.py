"""Submission on the real `garrison serve`: swaks with AUTH on 587 and 465.

`garrison init` writes the submission listeners (STARTTLS and implicit
TLS); the fixture moves them to free ports like every other listener.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import ALICE, BOB, PASSWORD, require_tool

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("listener", "tls_option"),
    [("submission", "--tls"), ("submissions", "--tls-on-connect")],
    ids=["starttls", "implicit tls"],
)
def test_swaks_submits_to_real_server(garrison_process, listener, tls_option) -> None:
    swaks = require_tool("swaks", "swaks")
    result = subprocess.run(
        [
            swaks,
            "--server",
            "127.0.0.1",
            "--port",
            str(garrison_process.port(listener)),
            tls_option,
            "--auth",
            "PLAIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            PASSWORD,
            "--from",
            ALICE,
            "--to",
            BOB,
            "--timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    assert "250 2.0.0 Ok: queued as" in result.stdout
    log = garrison_process.log()
    assert "event=auth" in log
    assert PASSWORD not in log


def test_swaks_mail_before_starttls_refused(garrison_process) -> None:
    swaks = require_tool("swaks", "swaks")
    result = subprocess.run(
        [
            swaks,
            "--server",
            "127.0.0.1",
            "--port",
            str(garrison_process.port("submission")),
            "--auth",
            "PLAIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            PASSWORD,
            "--from",
            ALICE,
            "--to",
            BOB,
            "--timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    # The default config allows plaintext AUTH from loopback, so the login
    # succeeds, but port 587 still requires STARTTLS before MAIL.
    assert "235 2.7.0" in result.stdout
    assert "530 5.7.0" in result.stdout
