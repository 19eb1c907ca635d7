"""Training from IMAP with imaplib: Junk moves and copies, $Junk, $NotJunk."""

from __future__ import annotations

import asyncio
import imaplib

from garrison.db.engine import connect
from garrison.filters.spam.tokens import SqlTokenCounts
from garrison.filters.spam.training import trainer_for
from tests.conftest import PASSWORD
from tests.filters.spam.samples import english
from tests.smtpd.helpers import ALICE

SCOPE = f"user:{ALICE}"


async def deliver(server, data: bytes, mailbox: str = "INBOX") -> None:
    account = server.directory.get_account(ALICE)
    found = server.store.get_mailbox(account.id, mailbox)
    await server.store.append(found.id, data)


def imap_session(port: int, *steps: tuple[str, ...]) -> list[str]:
    """Log in as alice, run `steps` as imaplib UID commands, return their statuses."""
    client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        client.login(ALICE, PASSWORD)
        statuses = []
        for mailbox, *command in steps:
            client.select(mailbox)
            typ, _ = client.uid(*command)
            statuses.append(typ)
    except BaseException:
        client.shutdown()
        raise
    client.logout()
    return statuses


async def run_imap(server, *steps: tuple[str, ...]) -> list[str]:
    statuses = await asyncio.to_thread(imap_session, server.port("imap"), *steps)
    await trainer_for(server.store).wait_idle()
    return statuses


def totals(server) -> tuple[int, int]:
    counts = SqlTokenCounts(connect(server.settings.db_path))
    try:
        return counts.scope_totals([SCOPE]).get(SCOPE, (0, 0))
    finally:
        counts.conn.close()


async def test_move_to_junk_trains_spam_once(garrison_server) -> None:
    await deliver(garrison_server, english("spam", 1))
    statuses = await run_imap(garrison_server, ("INBOX", "MOVE", "1", "Junk"))
    assert statuses == ["OK"]
    assert totals(garrison_server) == (1, 0)

    # Back to the INBOX and into Junk again: ham, then spam, never both.
    await run_imap(garrison_server, ("Junk", "MOVE", "1", "INBOX"))
    assert totals(garrison_server) == (0, 1)
    await run_imap(garrison_server, ("INBOX", "COPY", "2", "Junk"))
    assert totals(garrison_server) == (1, 0)
    await run_imap(garrison_server, ("INBOX", "COPY", "2", "Junk"))
    assert totals(garrison_server) == (1, 0)


async def test_move_from_junk_to_trash_trains_nothing(garrison_server) -> None:
    await deliver(garrison_server, english("spam", 2), "Junk")
    await run_imap(garrison_server, ("Junk", "MOVE", "1", "Trash"))
    assert totals(garrison_server) == (0, 0)


async def test_move_between_other_mailboxes_trains_nothing(garrison_server) -> None:
    await deliver(garrison_server, english("ham", 2))
    await run_imap(garrison_server, ("INBOX", "MOVE", "1", "Archive"))
    assert totals(garrison_server) == (0, 0)


async def test_junk_keywords_train(garrison_server) -> None:
    await deliver(garrison_server, english("spam", 3))
    await deliver(garrison_server, english("ham", 3))
    await run_imap(
        garrison_server,
        ("INBOX", "STORE", "1", "+FLAGS", "($Junk)"),
        ("INBOX", "STORE", "2", "+FLAGS", "($NotJunk)"),
    )
    assert totals(garrison_server) == (1, 1)
    # Setting the keyword again changes no flag, so nothing is trained.
    await run_imap(garrison_server, ("INBOX", "STORE", "1", "+FLAGS", "($Junk)"))
    assert totals(garrison_server) == (1, 1)
    # Other keywords train nothing.
    await run_imap(garrison_server, ("INBOX", "STORE", "2", "+FLAGS", "(\\Flagged)"))
    assert totals(garrison_server) == (1, 1)
