"""Token counts per scope: in the database, or in memory for measurements.

A scope is "server", "domain:<domain>" or "user:<address>". Each scope
counts its trained spam and ham messages (`spam_scopes`) and, per token, the
spam and ham messages that contained it (`spam_tokens`, keyed by
`classifier.token_hash`). `spam_trained` records the class each message
(a blob id, or the SHA-256 of a file) was trained as in each scope.
Training it again as the same class changes nothing. Training it as the
other class first removes its old counts, so a message counts at most once.

Classification of a message for one recipient sums the counts of the
recipient's user, domain and server scopes, taking only the scopes that
have at least `min_trained` spam and `min_trained` ham messages
(`combined_counts`).

Growth is bounded per scope: after every PRUNE_EVERY trained messages the
scope's rows are counted, and a scope over `max_scope_tokens` rows loses
its rarest tokens, the least recently trained first, down to 90 % of the
cap (`prune`). At the same moments the records of messages trained more
than TRAINED_RECORD_DAYS ago are deleted, so a message that old counts
again if it is trained again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Label = Literal["spam", "ham"]
PRUNE_EVERY = 50
TRAINED_RECORD_DAYS = 365
_CHUNK = 500


def user_scope(address: str) -> str:
    return "user:" + address.lower()


def domain_scope(domain: str) -> str:
    return "domain:" + domain.lower()


SERVER_SCOPE = "server"


def recipient_scopes(address: str, domain: str) -> list[str]:
    """Return the scopes whose counts classify mail for one account."""
    return [user_scope(address), domain_scope(domain), SERVER_SCOPE]


class TokenCounts(Protocol):
    """Read access to trained counts (`SqlTokenCounts`, `MemoryTokens`)."""

    def scope_totals(self, scopes: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return (spam, ham) message counts of each scope that has any."""
        ...

    def token_counts(
        self, scopes: Sequence[str], keys: Sequence[int]
    ) -> dict[int, tuple[int, int]]:
        """Return (spam, ham) per token key, summed over `scopes`."""
        ...


@dataclass(frozen=True, slots=True)
class Combined:
    """Counts of the qualifying scopes of one recipient, summed."""

    scopes: tuple[str, ...]
    nspam: int
    nham: int
    counts: dict[int, tuple[int, int]]


def combined_counts(
    store: TokenCounts, scopes: Sequence[str], keys: Sequence[int], min_trained: int
) -> Combined | None:
    """Return the summed counts of the scopes trained enough, or None if none is."""
    totals = store.scope_totals(scopes)
    ready = tuple(
        scope
        for scope in scopes
        if scope in totals
        and totals[scope][0] >= min_trained
        and totals[scope][1] >= min_trained
    )
    if not ready:
        return None
    nspam = sum(totals[scope][0] for scope in ready)
    nham = sum(totals[scope][1] for scope in ready)
    return Combined(ready, nspam, nham, store.token_counts(ready, keys))


class SqlTokenCounts:
    """Trained counts read through a SQLite connection (tables of migration 0010)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def scope_totals(self, scopes: Sequence[str]) -> dict[str, tuple[int, int]]:
        marks = ",".join("?" * len(scopes))
        rows = self.conn.execute(
            f"SELECT scope, spam, ham FROM spam_scopes WHERE scope IN ({marks})",
            tuple(scopes),
        )
        return {scope: (spam, ham) for scope, spam, ham in rows}

    def token_counts(
        self, scopes: Sequence[str], keys: Sequence[int]
    ) -> dict[int, tuple[int, int]]:
        result: dict[int, tuple[int, int]] = {}
        scope_marks = ",".join("?" * len(scopes))
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT token, SUM(spam), SUM(ham) FROM spam_tokens"
                f" WHERE scope IN ({scope_marks}) AND token IN ({marks})"
                f" GROUP BY token",
                (*scopes, *chunk),
            )
            for token, spam, ham in rows:
                result[token] = (spam, ham)
        return result

    def all_scopes(self) -> list[tuple[str, int, int, int]]:
        """Return (scope, spam, ham, token rows) for every scope, by name."""
        rows = self.conn.execute(
            "SELECT s.scope, s.spam, s.ham,"
            " (SELECT COUNT(*) FROM spam_tokens t WHERE t.scope = s.scope)"
            " FROM spam_scopes s ORDER BY s.scope"
        )
        return [tuple(row) for row in rows]


def learn(
    conn: sqlite3.Connection,
    scope: str,
    message: str,
    keys: Iterable[int],
    label: Label,
    max_scope_tokens: int,
) -> bool:
    """Train one message into `scope` inside the caller's transaction.

    Returns False when the message was already trained as `label` in this
    scope. A message trained as the other class is unlearned first.
    """
    row = conn.execute(
        "SELECT label FROM spam_trained WHERE scope = ? AND message = ?",
        (scope, message),
    ).fetchone()
    if row is not None and row[0] == label:
        return False
    keys = list(dict.fromkeys(keys))
    day = int(time.time() // 86400)
    conn.execute("INSERT OR IGNORE INTO spam_scopes(scope) VALUES (?)", (scope,))
    if row is not None:
        _count(conn, scope, keys, row[0], -1, day)
    _count(conn, scope, keys, label, 1, day)
    conn.execute(
        "INSERT OR REPLACE INTO spam_trained(scope, message, label, trained_at)"
        " VALUES (?, ?, ?, ?)",
        (scope, message, label, time.time()),
    )
    spam, ham = conn.execute(
        "SELECT spam, ham FROM spam_scopes WHERE scope = ?", (scope,)
    ).fetchone()
    if (spam + ham) % PRUNE_EVERY == 0:
        prune(conn, scope, max_scope_tokens)
        conn.execute(
            "DELETE FROM spam_trained WHERE scope = ? AND trained_at < ?",
            (scope, time.time() - TRAINED_RECORD_DAYS * 86400),
        )
    return True


def _count(
    conn: sqlite3.Connection,
    scope: str,
    keys: list[int],
    label: str,
    delta: int,
    day: int,
) -> None:
    column = "spam" if label == "spam" else "ham"
    conn.execute(
        f"UPDATE spam_scopes SET {column} = MAX({column} + ?, 0) WHERE scope = ?",
        (delta, scope),
    )
    if delta > 0:
        conn.executemany(
            f"INSERT INTO spam_tokens(scope, token, spam, ham, updated_at)"
            f" VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope, token) DO UPDATE SET"
            f" {column} = {column} + 1, updated_at = excluded.updated_at",
            [
                (scope, key, int(label == "spam"), int(label == "ham"), day)
                for key in keys
            ],
        )
        return
    conn.executemany(
        f"UPDATE spam_tokens SET {column} = MAX({column} - 1, 0)"
        f" WHERE scope = ? AND token = ?",
        [(scope, key) for key in keys],
    )
    conn.executemany(
        "DELETE FROM spam_tokens"
        " WHERE scope = ? AND token = ? AND spam = 0 AND ham = 0",
        [(scope, key) for key in keys],
    )


def prune(conn: sqlite3.Connection, scope: str, max_scope_tokens: int) -> int:
    """Delete the rarest, oldest tokens of a scope over the cap; return how many."""
    (rows,) = conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM spam_tokens WHERE scope = ? LIMIT ?)",
        (scope, max_scope_tokens + 1),
    ).fetchone()
    if rows <= max_scope_tokens:
        return 0
    (rows,) = conn.execute(
        "SELECT COUNT(*) FROM spam_tokens WHERE scope = ?", (scope,)
    ).fetchone()
    excess = rows - int(max_scope_tokens * 0.9)
    conn.execute(
        "DELETE FROM spam_tokens WHERE scope = ? AND token IN ("
        " SELECT token FROM spam_tokens WHERE scope = ?"
        " ORDER BY spam + ham, updated_at LIMIT ?)",
        (scope, scope, excess),
    )
    return int(excess)


@dataclass
class MemoryTokens:
    """Token counts in memory with the reads of `SqlTokenCounts`, for measurements.

    It keeps no record of trained messages and never prunes.
    """

    totals: dict[str, list[int]] = field(default_factory=dict)
    tokens: dict[str, dict[int, list[int]]] = field(default_factory=dict)

    def learn(self, scope: str, keys: Iterable[int], label: Label) -> None:
        """Count one message as `label` in `scope` (no record of trained messages)."""
        index = 0 if label == "spam" else 1
        self.totals.setdefault(scope, [0, 0])[index] += 1
        table = self.tokens.setdefault(scope, {})
        for key in set(keys):
            table.setdefault(key, [0, 0])[index] += 1

    def scope_totals(self, scopes: Sequence[str]) -> dict[str, tuple[int, int]]:
        return {
            scope: (self.totals[scope][0], self.totals[scope][1])
            for scope in scopes
            if scope in self.totals
        }

    def token_counts(
        self, scopes: Sequence[str], keys: Sequence[int]
    ) -> dict[int, tuple[int, int]]:
        result: dict[int, tuple[int, int]] = {}
        for key in keys:
            spam = ham = 0
            for scope in scopes:
                found = self.tokens.get(scope, {}).get(key)
                if found is not None:
                    spam += found[0]
                    ham += found[1]
            if spam or ham:
                result[key] = (spam, ham)
        return result
