"""Training the classifier from IMAP actions and from message files.

IMAP (user scope of the logged-in account, "user:<address>"):
- COPY or MOVE into the \\Junk mailbox (RFC 6154) from any other mailbox
  trains spam;
- COPY or MOVE out of \\Junk into a mailbox other than \\Trash trains ham;
- STORE that sets the $Junk keyword trains spam, and $NotJunk trains ham
  (RFC 5788 registers both keywords with this meaning).

The IMAP handlers only call `learn_after_copy` or `learn_after_store`,
which queue a request and return. A background task per store reads the
messages, tokenizes them in a worker thread and trains the whole batch in
one store write job, so the tagged OK does not wait for training. Requests
still queued when the server stops are lost. Each
message is keyed by its blob id, and `tokens.learn` keeps it from counting
twice (see there). Training from files (`train_files`, for
`garrison spam train`) keys each file by the SHA-256 of its content.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from garrison.filters.spam.scoring import Scorer
from garrison.filters.spam.tokens import Label, learn, user_scope
from garrison.observability.log import event
from garrison.store import MailStore, MessageRecord, StoreError
from garrison.store.writer import Transaction

log = logging.getLogger("garrison.filters.spam")

JUNK = "\\Junk"
TRASH = "\\Trash"
# RFC 5788 §3: the $Junk and $NotJunk keywords.
JUNK_KEYWORD = "$junk"
NOT_JUNK_KEYWORD = "$notjunk"
# Messages trained per store write job from files.
FILE_BATCH = 200
# Maildir and Dovecot bookkeeping files that are not messages.
_NOT_MESSAGES = ("dovecot", "maildirfolder", "subscriptions", "courierimap")


@dataclass(frozen=True, slots=True)
class _Request:
    scope: str
    label: Label
    mailbox_id: int
    uids: tuple[int, ...]


class Trainer:
    """Queues training requests of one store and trains them in batches."""

    def __init__(self, store: MailStore) -> None:
        self.store = store
        self.settings = store.settings.spam
        self.scorer = Scorer(self.settings)
        self._pending: list[_Request] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(
        self, scope: str, label: Label, mailbox_id: int, uids: Iterable[int]
    ) -> None:
        """Queue the messages for training; returns at once."""
        self._pending.append(_Request(scope, label, mailbox_id, tuple(uids)))
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_idle(self) -> None:
        """Wait until every queued request has been trained or has failed."""
        await self._idle.wait()

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._train(batch)
                except (OSError, StoreError) as exc:
                    event(log, "spam_training_failed", logging.ERROR, error=exc)
        finally:
            self._idle.set()

    async def _train(self, batch: list[_Request]) -> None:
        items: list[tuple[str, str, Label, list[int]]] = []
        for request in batch:
            records = self.store.messages(request.mailbox_id, request.uids)
            for record in records:
                items.append((request.scope, record.blob_id, request.label, []))
        if not items:
            return
        prepared = await asyncio.to_thread(self._tokenize, items)
        trained = await self.store.write(self._job(prepared))
        event(log, "spam_trained", messages=len(prepared), changed=trained)

    def _tokenize(
        self, items: list[tuple[str, str, Label, list[int]]]
    ) -> list[tuple[str, str, Label, list[int]]]:
        now = datetime.now(UTC)
        keys_by_blob: dict[str, list[int]] = {}
        prepared = []
        for scope, blob_id, label, _ in items:
            if blob_id not in keys_by_blob:
                data = self.store.blobs.read(blob_id)
                keys_by_blob[blob_id] = self.scorer.analyse(data, now).keys
            prepared.append((scope, blob_id, label, keys_by_blob[blob_id]))
        return prepared

    def _job(
        self, prepared: list[tuple[str, str, Label, list[int]]]
    ) -> Callable[[Transaction], int]:
        cap = self.settings.max_scope_tokens

        def job(txn: Transaction) -> int:
            return sum(
                learn(txn.conn, scope, message, keys, label, cap)
                for scope, message, label, keys in prepared
            )

        return job


_trainers: weakref.WeakKeyDictionary[MailStore, Trainer] = weakref.WeakKeyDictionary()


def trainer_for(store: MailStore) -> Trainer:
    """Return the store's trainer, created on first use."""
    trainer = _trainers.get(store)
    if trainer is None:
        trainer = _trainers[store] = Trainer(store)
    return trainer


def learn_after_copy(
    store: MailStore,
    address: str,
    source_special_use: str | None,
    target_special_use: str | None,
    target_id: int,
    pairs: list[tuple[int, int]],
) -> None:
    """Queue training for a COPY or MOVE, if it goes into or out of Junk."""
    if not store.settings.spam.enabled or not pairs:
        return
    label: Label | None = None
    if target_special_use == JUNK and source_special_use != JUNK:
        label = "spam"
    elif source_special_use == JUNK and target_special_use not in (JUNK, TRASH):
        label = "ham"
    if label is not None:
        uids = [new_uid for _, new_uid in pairs]
        trainer_for(store).submit(user_scope(address), label, target_id, uids)


def learn_after_store(
    store: MailStore,
    address: str,
    mailbox_id: int,
    flags: Iterable[str],
    changed: list[MessageRecord],
) -> None:
    """Queue training for a STORE that set $Junk or $NotJunk on messages."""
    if not store.settings.spam.enabled or not changed:
        return
    requested = {flag.lower() for flag in flags}
    keywords: tuple[tuple[str, Label], ...] = (
        (JUNK_KEYWORD, "spam"),
        (NOT_JUNK_KEYWORD, "ham"),
    )
    for keyword, label in keywords:
        if keyword not in requested:
            continue
        uids = [
            record.uid
            for record in changed
            if keyword in {flag.lower() for flag in record.flags}
        ]
        if uids:
            trainer_for(store).submit(user_scope(address), label, mailbox_id, uids)


def message_files(directory: Path) -> Iterator[Path]:
    """Yield the message files under `directory`, recursively, in name order.

    Hidden files and the bookkeeping files of Maildir and Dovecot are skipped.
    """
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.lower().startswith(_NOT_MESSAGES):
                continue
            yield Path(root) / name


def read_message_file(path: Path, limit: int) -> bytes:
    """Read up to `limit` bytes of a message file, without a leading mbox From_ line."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1024)
    if data.startswith(b"From "):
        data = data[data.find(b"\n") + 1 :]
    return data[:limit]


async def train_files(
    store: MailStore, paths: Iterable[Path], label: Label, scope: str
) -> tuple[int, int]:
    """Train every file as `label` into `scope`; return (files read, newly trained)."""
    scorer = Scorer(store.settings.spam)
    cap = store.settings.spam.max_scope_tokens
    now = datetime.now(UTC)
    seen = trained = 0
    batch: list[tuple[str, list[int]]] = []

    async def flush() -> int:
        items = list(batch)
        batch.clear()

        def job(txn: Transaction) -> int:
            return sum(
                learn(txn.conn, scope, key, keys, label, cap) for key, keys in items
            )

        return cast(int, await store.write(job))

    for path in paths:
        data = read_message_file(path, store.settings.spam.max_scan_size)
        seen += 1
        key = hashlib.sha256(data).hexdigest()
        batch.append((key, scorer.analyse(data, now).keys))
        if len(batch) >= FILE_BATCH:
            trained += await flush()
    if batch:
        trained += await flush()
    return seen, trained
