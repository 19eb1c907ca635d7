"""How the delivery pipeline applies the verdict of the inbound checks.

The checks here are written for the test: they return fixed results, so
that each way a verdict can go (reject, quarantine, Junk, added and removed
fields) is exercised over real SMTP without depending on DNS or on a
classifier. The real checks have their own tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from garrison.filters.verdict import CheckChain, CheckResult, InboundMessage, Verdict
from garrison.smtp.replies import Reply
from tests.filters.test_antivirus_smtp import send_message
from tests.smtpd.helpers import ALICE

MESSAGE = (
    b"Authentication-Results: Mail.Example.Test; spf=pass smtp.mailfrom=forged.example\r\n"
    b"Authentication-Results: other.example; dkim=pass header.d=example.org\r\n"
    b"X-Spam-Flag: NO\r\n"
    b"From: sender@example.org\r\n"
    b"Subject: verdict\r\n"
    b"\r\n"
    b"body\r\n"
)


@dataclass
class FixedCheck:
    """Returns the result it was given and records what it saw."""

    result: CheckResult
    name: str = "fixed"
    seen: list[InboundMessage] = field(default_factory=list)

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        self.seen.append(message)
        return self.result


def install(server, *checks: FixedCheck) -> None:
    server.runner.services.delivery.checks = CheckChain(list(checks))


def mailbox_messages(server, name: str) -> list[bytes]:
    account = server.directory.resolve_recipient(ALICE).accounts[0]
    mailbox = server.store.get_mailbox(account.id, name)
    assert mailbox is not None
    return [
        server.store.blobs.read(record.blob_id)
        for record in server.store.messages(mailbox.id)
    ]


async def test_fields_added_and_forged_results_removed(garrison_server) -> None:
    check = FixedCheck(
        CheckResult(
            "fixed",
            auth_results=["spf=fail smtp.mailfrom=example.org"],
            headers=[("X-Spam-Status", "No, score=0.0")],
            strip_headers={"x-spam-flag"},
        )
    )
    install(garrison_server, check)
    reply = await send_message(garrison_server, MESSAGE)
    assert reply.code == 250

    assert check.seen[0].header.endswith(b"Subject: verdict\r\n")
    assert check.seen[0].header[check.seen[0].trace_end :].startswith(
        b"Authentication-Results: Mail.Example.Test;"
    )
    [stored] = mailbox_messages(garrison_server, "INBOX")
    header = stored.split(b"\r\n\r\n", 1)[0]
    assert b"smtp.mailfrom=forged.example" not in header
    assert b"X-Spam-Flag" not in header
    assert b"Authentication-Results: other.example;" in header
    assert (
        b"Authentication-Results: mail.example.test;\r\n\tspf=fail smtp.mailfrom=example.org\r\n"
        in header
    )
    assert b"X-Spam-Status: No, score=0.0\r\n" in header
    # Our fields follow our own trace fields, above the sender's.
    assert header.index(b"Received:") < header.index(b"Authentication-Results: mail.example.test")
    assert stored.endswith(b"\r\n\r\nbody\r\n")


async def test_reject_refuses_inside_the_dialogue(garrison_server) -> None:
    refusal = Reply(550, "5.7.1", "rejected by test policy")
    later = FixedCheck(CheckResult("later", junk=True), name="later")
    install(garrison_server, FixedCheck(CheckResult("fixed", reject=refusal)), later)
    reply = await send_message(garrison_server, MESSAGE)
    assert (reply.code, reply.enhanced) == (550, "5.7.1")
    assert later.seen == []
    assert mailbox_messages(garrison_server, "INBOX") == []


async def test_junk_files_into_junk_mailbox(garrison_server) -> None:
    install(garrison_server, FixedCheck(CheckResult("fixed", junk=True)))
    reply = await send_message(garrison_server, MESSAGE)
    assert reply.code == 250
    assert mailbox_messages(garrison_server, "INBOX") == []
    assert len(mailbox_messages(garrison_server, "Junk")) == 1


async def test_quarantine_keeps_message_out_of_mailboxes(garrison_server) -> None:
    install(garrison_server, FixedCheck(CheckResult("fixed", quarantine="spam 15.0")))
    reply = await send_message(garrison_server, MESSAGE)
    assert reply.code == 250
    assert mailbox_messages(garrison_server, "INBOX") == []
    rows = garrison_server.runner.services.delivery.quarantine.list()
    assert [row.reason for row in rows] == ["spam 15.0"]


async def test_allow_list_overrides_later_reject(garrison_server) -> None:
    account = garrison_server.directory.resolve_recipient(ALICE).accounts[0]
    allowing = FixedCheck(CheckResult("allow", allowed_accounts={account.id}), name="allow")
    refusal = Reply(550, "5.7.1", "rejected by test policy")
    install(
        garrison_server,
        allowing,
        FixedCheck(CheckResult("fixed", reject=refusal, junk=True)),
    )
    reply = await send_message(garrison_server, MESSAGE)
    assert reply.code == 250
    assert len(mailbox_messages(garrison_server, "INBOX")) == 1
    assert mailbox_messages(garrison_server, "Junk") == []
