"""Group commit: one writer thread runs every database write.

SQLite allows one writer at a time, and with `synchronous=FULL` each commit
costs an fsync. The writer thread takes every job queued while the previous
commit ran, executes each inside its own SAVEPOINT (so one failing job does
not undo the others), commits once, and only then resolves the callers'
futures. No job is acknowledged before the commit that contains it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from garrison.db.engine import connect
from garrison.observability.log import event

log = logging.getLogger("garrison.store")
T = TypeVar("T")


@dataclass
class Transaction:
    """What a job gets: the writer's connection and a set of changed mailboxes."""

    conn: sqlite3.Connection
    changed: set[int] = field(default_factory=set)


Job = Callable[[Transaction], Any]
_STOP = object()


class GroupCommitWriter:
    """Runs write jobs in batches on a dedicated thread."""

    def __init__(
        self,
        path: Path,
        on_commit: Callable[[set[int]], None],
        max_batch: int = 256,
    ) -> None:
        self._path = path
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._started = False
        self.commits = 0
        self.jobs = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Finish queued jobs, then end the thread."""
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
            self._started = False

    async def run(self, job: Callable[[Transaction], T]) -> T:
        """Execute `job` in the next commit and return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((job, future, loop))
        return await future

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                self._commit_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        txn = Transaction(conn)
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _future, _loop in batch:
                conn.execute("SAVEPOINT job")
                try:
                    outcomes.append((True, job(txn)))
                    conn.execute("RELEASE job")
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - every caller learns of it
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            event(log, "commit_failed", logging.ERROR, jobs=len(batch), error=exc)
            outcomes = [(False, exc)] * len(batch)
            txn.changed.clear()
        self.commits += 1
        self.jobs += len(batch)

        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_job, future, loop), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, items in by_loop.items():
            loop.call_soon_threadsafe(self._resolve, items, set(txn.changed))

    def _resolve(self, items: list[Any], changed: set[int]) -> None:
        if changed:
            self._on_commit(changed)
        for future, (ok, value) in items:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
