"""Counters shared by the worker processes of one server.

The supervisor creates a `SharedTable` before it forks the workers: an
anonymous shared memory map that every worker can read, guarded by one
process-shared lock. Each worker calls `install(table, index)` after the
fork; `installed()` then returns the table and the worker's index for the
connection limiter and the login lockout, which keep their per-IP
connection counts and automatic bans in it, so that the limits hold for
the server as a whole and not per worker.

Each slot has a 64-bit hash of its key, a time (`time.monotonic()`
seconds, the same clock in every process on Linux: the end of a ban, or
the start of a counting window), and one count per worker: open
connections, or failed logins. Counts are kept per
worker so that a restarted worker can clear the counts of the process it
replaces (`clear_worker`), which died without releasing its connections.

Slots are found by linear probing over at most `_PROBES` slots. A slot
whose counts are all zero and whose ban has expired is free for another
key. When no slot is free within the probe range, `add` returns False and
the caller falls back to its own per-process count.
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import struct
import time

_HEADER = struct.Struct("<Qd")
_COUNT = struct.Struct("<H")
_PROBES = 64
_MAX_COUNT = 0xFFFF

_installed: tuple[SharedTable, int] | None = None


def _hash(key: str) -> int:
    value = int.from_bytes(
        hashlib.blake2b(key.encode(), digest_size=8).digest(), "little"
    )
    return value or 1


class SharedTable:
    """Per-key counters and ban times in memory shared across forked workers."""

    def __init__(self, workers: int, slots: int = 65536) -> None:
        self.workers = workers
        self.slots = slots
        self.slot_size = _HEADER.size + _COUNT.size * workers
        self.memory = mmap.mmap(-1, self.slot_size * slots)
        self.lock = multiprocessing.get_context("fork").Lock()

    def _find(self, key_hash: int, claim: bool, now: float) -> int | None:
        """Return the offset of the key's slot; with `claim`, take a free one."""
        start = key_hash % self.slots
        free: int | None = None
        for probe in range(_PROBES):
            offset = ((start + probe) % self.slots) * self.slot_size
            stored, banned_until = _HEADER.unpack_from(self.memory, offset)
            if stored == key_hash:
                return offset
            if stored == 0:
                # A never-used slot ends the search: every key is stored at
                # the first free slot of its probe sequence.
                if free is None and claim:
                    free = offset
                break
            if (
                free is None
                and claim
                and banned_until <= now
                and not self._busy(offset)
            ):
                free = offset
        if free is not None:
            self.memory[free : free + self.slot_size] = bytes(self.slot_size)
            _HEADER.pack_into(self.memory, free, key_hash, 0.0)
        return free

    def _busy(self, offset: int) -> bool:
        counts = self.memory[offset + _HEADER.size : offset + self.slot_size]
        return any(counts)

    def add(self, key: str, worker: int, delta: int) -> bool:
        """Change the worker's open count for `key`; return False when the table is full."""
        with self.lock:
            offset = self._find(_hash(key), delta > 0, time.monotonic())
            if offset is None:
                return delta <= 0
            position = offset + _HEADER.size + _COUNT.size * worker
            (count,) = _COUNT.unpack_from(self.memory, position)
            count = min(max(count + delta, 0), _MAX_COUNT)
            _COUNT.pack_into(self.memory, position, count)
            return True

    def try_add(self, key: str, worker: int, limit: int) -> bool | None:
        """Count one more for the worker unless the total has reached `limit`.

        The check and the increment are one step under the lock, so two
        workers cannot both take the last place. Returns True when counted,
        False at the limit (0 means none), and None when the table is full.
        """
        with self.lock:
            offset = self._find(_hash(key), True, time.monotonic())
            if offset is None:
                return None
            counts = self.memory[offset + _HEADER.size : offset + self.slot_size]
            total = sum(
                _COUNT.unpack_from(counts, i * _COUNT.size)[0]
                for i in range(self.workers)
            )
            if limit and total >= limit:
                return False
            position = offset + _HEADER.size + _COUNT.size * worker
            (count,) = _COUNT.unpack_from(self.memory, position)
            _COUNT.pack_into(self.memory, position, min(count + 1, _MAX_COUNT))
            return True

    def total(self, key: str) -> int:
        """Return the open count of `key` summed over all workers."""
        with self.lock:
            offset = self._find(_hash(key), False, 0.0)
            if offset is None:
                return 0
            counts = self.memory[offset + _HEADER.size : offset + self.slot_size]
        return sum(
            _COUNT.unpack_from(counts, i * _COUNT.size)[0] for i in range(self.workers)
        )

    def ban(self, key: str, until: float) -> bool:
        """Ban `key` until the monotonic time `until`; return False when the table is full."""
        with self.lock:
            offset = self._find(_hash(key), True, time.monotonic())
            if offset is None:
                return False
            _HEADER.pack_into(self.memory, offset, _hash(key), until)
            return True

    def banned_until(self, key: str) -> float:
        """Return the end of the ban of `key`, or 0.0 when it was never banned."""
        with self.lock:
            offset = self._find(_hash(key), False, 0.0)
            if offset is None:
                return 0.0
            return float(_HEADER.unpack_from(self.memory, offset)[1])

    def reset(self, key: str) -> None:
        """Zero the counts of `key` in every worker's column."""
        with self.lock:
            offset = self._find(_hash(key), False, 0.0)
            if offset is None:
                return
            start = offset + _HEADER.size
            self.memory[start : offset + self.slot_size] = bytes(
                self.slot_size - _HEADER.size
            )

    def clear_worker(self, worker: int) -> None:
        """Zero every count of `worker`, whose process has been replaced."""
        zero = bytes(_COUNT.size)
        with self.lock:
            for slot in range(self.slots):
                position = slot * self.slot_size + _HEADER.size + _COUNT.size * worker
                self.memory[position : position + _COUNT.size] = zero


def install(table: SharedTable, worker: int) -> None:
    """Make `table` the shared table of this worker process."""
    global _installed
    table.clear_worker(worker)
    _installed = (table, worker)


def installed() -> tuple[SharedTable, int] | None:
    """Return this process's shared table and worker index, if the supervisor set one."""
    return _installed
