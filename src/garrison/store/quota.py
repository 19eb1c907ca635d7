"""Storage quota checks, run inside the store's write transactions.

An account's limit is `accounts.quota_bytes` (NULL means unlimited) and its
usage is `accounts.used_bytes`, which every store write keeps current. The
checks read both inside the writer's transaction, so two concurrent appends
cannot both pass a check that only one of them fits.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from garrison.store.errors import QuotaExceeded


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """Storage used by an account and its limit, in bytes (None: no limit)."""

    used_bytes: int
    limit_bytes: int | None
    messages: int

    @property
    def over_quota(self) -> bool:
        """True when the usage has reached or passed the limit."""
        return self.limit_bytes is not None and self.used_bytes >= self.limit_bytes


def fits(conn: sqlite3.Connection, account_id: int, added_bytes: int) -> bool:
    """Return True when `added_bytes` more keep the account within its quota."""
    row = conn.execute(
        "SELECT used_bytes, quota_bytes FROM accounts WHERE id = ?", (account_id,)
    ).fetchone()
    if row is None or row[1] is None:
        return True
    used, limit = row
    return used + added_bytes <= limit


def require_fits(conn: sqlite3.Connection, account_id: int, added_bytes: int) -> None:
    """Raise QuotaExceeded unless `added_bytes` more fit in the account's quota."""
    if not fits(conn, account_id, added_bytes):
        raise QuotaExceeded(
            f"storage quota exceeded: {added_bytes} more bytes do not fit"
        )


def read_usage(conn: sqlite3.Connection, account_id: int) -> QuotaUsage:
    """Return the account's storage usage, limit and message count."""
    row = conn.execute(
        "SELECT used_bytes, quota_bytes FROM accounts WHERE id = ?", (account_id,)
    ).fetchone()
    used, limit = row if row is not None else (0, None)
    (messages,) = conn.execute(
        "SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = ?",
        (account_id,),
    ).fetchone()
    return QuotaUsage(int(used), None if limit is None else int(limit), int(messages))
