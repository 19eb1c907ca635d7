"""The spam check over real SMTP: X-Spam fields, Junk per account, reject, allow."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from garrison.config import Settings
from garrison.config.schema import SpamSettings
from garrison.filters.spam import SpamCheck
from garrison.filters.spam.training import message_files, train_files
from garrison.filters.verdict import CheckChain, CheckResult, InboundMessage, Verdict
from garrison.server.runner import Runner
from garrison.smtp import replies
from tests.conftest import RunningServer
from tests.filters.spam.samples import english
from tests.smtpd.dialogue import Dialogue, ServerReply
from tests.smtpd.helpers import ALICE, BOB

ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def spam_server(settings: Settings) -> ServerFactory:
    """Return a factory that runs the server with the given [spam] options."""

    @asynccontextmanager
    async def run(**options: object) -> AsyncIterator[RunningServer]:
        spam = SpamSettings(**options)
        changed = settings.model_copy(update={"spam": spam})
        runner = Runner(changed)
        await runner.start()
        try:
            yield RunningServer(runner, changed)
        finally:
            await runner.stop()

    return run


async def send(server: RunningServer, message: bytes, *recipients: str) -> ServerReply:
    """Send one message over the MX listener; return the DATA reply."""
    async with Dialogue.connect(server.port("smtp")) as smtp:
        await smtp.hello()
        await smtp.command("MAIL FROM:<sender@example.org>", 250)
        for recipient in recipients or (ALICE,):
            await smtp.command(f"RCPT TO:<{recipient}>", 250)
        await smtp.command("DATA", 354)
        await smtp.send(message + b".\r\n")
        reply = await smtp.read_reply()
        await smtp.command("QUIT", 221)
    return reply


def mailbox(server: RunningServer, address: str, name: str) -> list[bytes]:
    account = server.directory.get_account(address)
    assert account is not None
    found = server.store.get_mailbox(account.id, name)
    assert found is not None
    return [server.store.blobs.read(r.blob_id) for r in server.store.messages(found.id)]


async def train(
    server: RunningServer, tmp_path: Path, scope: str, count: int = 6
) -> None:
    """Train `count` English spam and ham samples into `scope` from files."""
    for label in ("spam", "ham"):
        directory = tmp_path / f"{scope.replace(':', '_')}-{label}"
        directory.mkdir()
        for index in range(count):
            (directory / f"{index}.eml").write_bytes(english(label, index))
        await train_files(server.store, message_files(directory), label, scope)


def header_of(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[0]


async def test_trained_spam_goes_to_junk(spam_server, tmp_path) -> None:
    async with spam_server(min_trained=5) as server:
        await train(server, tmp_path, "server")
        forged = b"X-Spam-Flag: NO\r\nX-Spam-Score: -50\r\n" + english("spam", 40)
        assert (await send(server, forged)).code == 250
        assert (await send(server, english("ham", 40))).code == 250

        [junk] = mailbox(server, ALICE, "Junk")
        assert b"X-Spam-Flag: YES\r\n" in header_of(junk)
        assert b"X-Spam-Flag: NO" not in header_of(junk)
        assert b"X-Spam-Score: -50" not in header_of(junk)
        assert b"BAYES_SPAM" in header_of(junk)
        [inbox] = mailbox(server, ALICE, "INBOX")
        assert b"X-Spam-Flag: NO\r\n" in header_of(inbox)
        assert b"BAYES_HAM" in header_of(inbox)


async def test_untrained_classifier_adds_nothing(spam_server) -> None:
    async with spam_server() as server:
        assert (await send(server, english("spam", 1))).code == 250
        [inbox] = mailbox(server, ALICE, "INBOX")
        assert b"X-Spam-Status: No, score=0.0 required=6.0 tests=none" in inbox


async def test_junk_decided_per_account(spam_server, tmp_path) -> None:
    async with spam_server(min_trained=5) as server:
        # Only alice has trained counts; bob's copy is scored on rules alone.
        await train(server, tmp_path, f"user:{ALICE}")
        assert (await send(server, english("spam", 50), ALICE, BOB)).code == 250
        assert len(mailbox(server, ALICE, "Junk")) == 1
        assert mailbox(server, ALICE, "INBOX") == []
        assert mailbox(server, BOB, "Junk") == []
        assert len(mailbox(server, BOB, "INBOX")) == 1


def dangerous_message() -> bytes:
    payload = base64.b64encode(b"MZ fake program").decode()
    return (
        "From: Billing <billing@example.org>\r\n"
        "To: alice@example.test\r\n"
        "Subject: YOUR INVOICE IS OVERDUE\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nOpen the invoice.\r\n"
        '--b1\r\nContent-Type: application/octet-stream; name="invoice.pdf.exe"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{payload}\r\n--b1--\r\n"
    ).encode()


async def test_high_score_rejected_with_550(spam_server) -> None:
    async with spam_server(junk_score=5.0, reject_score=8.0) as server:
        reply = await send(server, dangerous_message())
        assert (reply.code, reply.enhanced) == (550, "5.7.1")
        assert replies.SPAM_REJECTED.text in reply.text
        # The reply names no rule.
        assert "EXTENSION" not in reply.text
        assert mailbox(server, ALICE, "INBOX") == []
        assert mailbox(server, ALICE, "Junk") == []


async def test_quarantine_threshold(spam_server) -> None:
    async with spam_server(junk_score=5.0, quarantine_score=8.0) as server:
        assert (await send(server, dangerous_message())).code == 250
        assert mailbox(server, ALICE, "INBOX") == []
        rows = server.services.delivery.quarantine.list()
        assert len(rows) == 1
        assert rows[0].reason.startswith("spam score ")


class AllowAll:
    """A reputation result that allow-lists every recipient.

    The reputation check has its own tests. This class replaces its result
    so that the test does not depend on how its lists are configured.
    """

    name = "reputation"

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        return CheckResult("reputation", details={"allow": True})


async def test_allow_listed_sender_not_junked(spam_server) -> None:
    async with spam_server(junk_score=5.0, reject_score=8.0) as server:
        settings = server.settings.spam
        server.services.delivery.checks = CheckChain(
            [AllowAll(), SpamCheck(settings, server.store)]
        )
        assert (await send(server, dangerous_message())).code == 250
        [inbox] = mailbox(server, ALICE, "INBOX")
        assert b"X-Spam-Flag: YES" in header_of(inbox)
        assert mailbox(server, ALICE, "Junk") == []


class FixedResult:
    """Returns a fixed result under the name of a check that runs before spam.

    The DNS list and SPF checks have their own tests. This class replaces
    their results so that the scores the spam check adds up are known.
    """

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        self.name = result.name

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        return self.result


EARLIER_RESULTS = [
    CheckResult("reputation", symbols={"DNSBL_zen_example": 4.0}),
    CheckResult("spf", auth_results=["spf=fail smtp.mailfrom=example.org"]),
]


@pytest.mark.parametrize(
    ("scores", "expected_mailbox", "expected_score"),
    [({}, "INBOX", "5.0"), ({"R_SPF_FAIL": 3.0}, "Junk", "7.0")],
    ids=["built-in scores", "SPF score raised in settings"],
)
async def test_dnsbl_and_spf_scores_add_up(
    spam_server, scores, expected_mailbox, expected_score
) -> None:
    async with spam_server(scores=scores) as server:
        checks = [FixedResult(result) for result in EARLIER_RESULTS]
        server.services.delivery.checks = CheckChain(
            [*checks, SpamCheck(server.settings.spam, server.store)]
        )
        assert (await send(server, english("ham", 1))).code == 250
        [stored] = mailbox(server, ALICE, expected_mailbox)
        header = header_of(stored)
        assert f"X-Spam-Score: {expected_score}\r\n".encode() in header
        assert b"DNSBL_zen_example" in header
        assert b"R_SPF_FAIL" in header


async def test_failed_count_read_still_delivers(spam_server, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="garrison.filters.spam")
    async with spam_server() as server:
        check = SpamCheck(server.settings.spam, server.store)
        server.services.delivery.checks = CheckChain([check])
        # A closed connection makes every read raise sqlite3.ProgrammingError.
        check.close()
        assert (await send(server, english("ham", 1))).code == 250
        assert len(mailbox(server, ALICE, "INBOX")) == 1
        messages = [record.getMessage() for record in caplog.records]
        assert any("spam_classifier_failed" in text for text in messages)


async def test_gtube_rejected_with_default_thresholds(spam_server) -> None:
    gtube = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    message = (
        b"From: sender@example.org\r\nTo: alice@example.test\r\nSubject: test\r\n"
        b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <g@example.org>\r\n"
        b"\r\n" + gtube + b"\r\n"
    )
    async with spam_server() as server:
        reply = await send(server, message)
        assert (reply.code, reply.enhanced) == (550, "5.7.1")
        assert mailbox(server, ALICE, "INBOX") == []
