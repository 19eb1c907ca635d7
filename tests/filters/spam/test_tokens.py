"""Token counts in the database: learning once per class, unlearning, pruning."""

from __future__ import annotations

from garrison.db.engine import connect
from garrison.filters.spam.tokens import (
    PRUNE_EVERY,
    SqlTokenCounts,
    combined_counts,
    learn,
    prune,
    recipient_scopes,
)

SCOPE = "user:alice@example.test"


async def learn_once(store, message: str, keys: list[int], label: str) -> bool:
    return await store.write(
        lambda txn: learn(txn.conn, SCOPE, message, keys, label, 500_000)
    )


def reader(store) -> SqlTokenCounts:
    return SqlTokenCounts(connect(store.settings.db_path))


async def test_message_counted_once_per_class(services) -> None:
    store = services.store
    keys = [1, 2, 3]
    assert await learn_once(store, "blob-a", keys, "spam") is True
    assert await learn_once(store, "blob-a", keys, "spam") is False
    counts = reader(store)
    assert counts.scope_totals([SCOPE]) == {SCOPE: (1, 0)}
    assert counts.token_counts([SCOPE], keys) == {1: (1, 0), 2: (1, 0), 3: (1, 0)}


async def test_reclassification_unlearns_old_class(services) -> None:
    store = services.store
    await learn_once(store, "blob-a", [1, 2], "spam")
    await learn_once(store, "blob-b", [2, 3], "spam")
    assert await learn_once(store, "blob-a", [1, 2], "ham") is True
    counts = reader(store)
    assert counts.scope_totals([SCOPE]) == {SCOPE: (1, 1)}
    assert counts.token_counts([SCOPE], [1, 2, 3]) == {
        1: (0, 1),
        2: (1, 1),
        3: (1, 0),
    }


async def test_scopes_combine_when_trained_enough(services) -> None:
    store = services.store
    for index in range(2):
        for label in ("spam", "ham"):
            await store.write(
                lambda txn, i=index, kind=label: learn(
                    txn.conn, "server", f"{kind}{i}", [7], kind, 500_000
                )
            )
    await learn_once(store, "only-one", [7], "spam")
    scopes = recipient_scopes("alice@example.test", "example.test")
    combined = combined_counts(reader(store), scopes, [7], min_trained=2)
    assert combined is not None
    # The user scope has 1 spam and 0 ham, below the minimum: left out.
    assert combined.scopes == ("server",)
    assert (combined.nspam, combined.nham) == (2, 2)
    assert combined.counts == {7: (2, 2)}


async def test_prune_caps_rows_per_scope(services) -> None:
    store = services.store
    await learn_once(store, "big", list(range(100)), "spam")
    await learn_once(store, "common", [1, 2, 3], "spam")
    removed = await store.write(lambda txn: prune(txn.conn, SCOPE, 20))
    assert removed == 100 - 18
    counts = reader(store)
    remaining = counts.token_counts([SCOPE], list(range(100)))
    assert len(remaining) == 18
    # The tokens seen twice outlive the ones seen once.
    assert {1, 2, 3} <= set(remaining)


async def test_old_trained_records_expire(services) -> None:
    store = services.store
    await learn_once(store, "old", [1], "spam")
    await store.write(
        lambda txn: txn.conn.execute("UPDATE spam_trained SET trained_at = 0")
    )
    for index in range(PRUNE_EVERY - 1):
        await learn_once(store, f"new{index}", [2], "ham")
    counts = reader(store)
    rows = counts.conn.execute(
        "SELECT message FROM spam_trained WHERE scope = ?", (SCOPE,)
    ).fetchall()
    assert len(rows) == PRUNE_EVERY - 1
    assert ("old",) not in rows
    # The counts stay: only the record that prevents double counting goes.
    assert counts.scope_totals([SCOPE]) == {SCOPE: (1, PRUNE_EVERY - 1)}
