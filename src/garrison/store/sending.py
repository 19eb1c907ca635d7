"""The sending log: how much each authenticated account submitted lately.

Every message an authenticated client submits adds one row to
`submission_log` with its recipient count. The hourly limits of
`[submission]` are checked against the rows of the last hour. The table
lives in the shared database, so the count covers every worker process.

NOTE: a check and the row it depends on are not one transaction. Sessions
of one account that run at the same moment can each pass the check, so the
limit can be exceeded by the messages in flight at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from garrison.db.engine import connect
from garrison.store.service import MailStore
from garrison.store.writer import Transaction

WINDOW_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class SendingCounts:
    """Messages and recipients an account submitted in the last hour."""

    messages: int
    recipients: int


class SendingLog:
    """Reads the sending log through its own connection; writes through the store."""

    def __init__(self, store: MailStore) -> None:
        self._store = store
        self._read = connect(store.settings.db_path)

    def close(self) -> None:
        self._read.close()

    def counts(self, account_id: int, now: float | None = None) -> SendingCounts:
        """Return the account's totals over the last WINDOW_SECONDS."""
        since = (time.time() if now is None else now) - WINDOW_SECONDS
        messages, recipients = self._read.execute(
            "SELECT COUNT(*), COALESCE(SUM(recipients), 0) FROM submission_log"
            " WHERE account_id = ? AND created_at > ?",
            (account_id, since),
        ).fetchone()
        return SendingCounts(int(messages), int(recipients))

    async def record(
        self, account_id: int, recipients: int, now: float | None = None
    ) -> None:
        """Add one submitted message; drop the account's rows past the window."""
        stamp = time.time() if now is None else now

        def job(txn: Transaction) -> None:
            txn.conn.execute(
                "DELETE FROM submission_log WHERE account_id = ? AND created_at <= ?",
                (account_id, stamp - WINDOW_SECONDS),
            )
            txn.conn.execute(
                "INSERT INTO submission_log(account_id, created_at, recipients)"
                " VALUES (?, ?, ?)",
                (account_id, stamp, recipients),
            )

        await self._store.write(job)
