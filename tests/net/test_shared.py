"""The table of connection counts and bans shared by forked workers."""

from __future__ import annotations

import os
import time

from garrison.config.schema import LimitsSettings
from garrison.net.limits import ConnectionLimiter
from garrison.net.lockout import AuthLockout
from garrison.net.shared import SharedTable


def test_counts_add_up_across_processes() -> None:
    table = SharedTable(workers=2, slots=64)
    pid = os.fork()
    if pid == 0:
        code = 0 if table.add("ip:192.0.2.1", 1, 3) else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.add("ip:192.0.2.1", 0, 2)
    assert table.total("ip:192.0.2.1") == 5
    assert table.total("ip:192.0.2.2") == 0


def test_release_never_goes_below_zero() -> None:
    table = SharedTable(workers=1, slots=64)
    table.add("ip:a", 0, 1)
    table.add("ip:a", 0, -1)
    table.add("ip:a", 0, -1)
    assert table.total("ip:a") == 0


def test_clear_worker_drops_dead_counts() -> None:
    table = SharedTable(workers=2, slots=64)
    table.add("ip:a", 0, 4)
    table.add("ip:a", 1, 1)
    table.clear_worker(0)
    assert table.total("ip:a") == 1


def test_ban_seen_by_other_process() -> None:
    table = SharedTable(workers=2, slots=64)
    pid = os.fork()
    if pid == 0:
        table.ban("ban:192.0.2.9", time.monotonic() + 60)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.banned_until("ban:192.0.2.9") > time.monotonic()
    assert table.banned_until("ban:192.0.2.10") == 0.0


def test_full_table_reports_failure() -> None:
    table = SharedTable(workers=1, slots=4)
    results = [table.add(f"ip:{index}", 0, 1) for index in range(8)]
    assert results.count(True) == 4
    assert results.count(False) == 4


def test_free_slots_are_reused() -> None:
    table = SharedTable(workers=1, slots=4)
    for index in range(4):
        assert table.add(f"ip:{index}", 0, 1)
        assert table.add(f"ip:{index}", 0, -1)
    for index in range(4, 8):
        assert table.add(f"ip:{index}", 0, 1)
    assert table.total("ip:7") == 1


def limiter_in(table: SharedTable, worker: int, limit: int) -> ConnectionLimiter:
    limits = LimitsSettings(max_connections_per_ip=limit, ban_after_failures=2)
    return ConnectionLimiter(
        limits, AuthLockout(limits, shared=table), shared=(table, worker)
    )


def test_limiters_in_two_workers_share_limit() -> None:
    table = SharedTable(workers=2, slots=256)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        # Worker 1 admits two connections and keeps them open.
        os.close(reader)
        worker = limiter_in(table, 1, 3)
        open_now = [worker.admit("192.0.2.7", "smtp") for _ in range(2)]
        os.write(writer, b"1" if all(open_now) else b"0")
        os.close(writer)
        os._exit(0)
    os.close(writer)
    assert os.read(reader, 1) == b"1"
    os.close(reader)
    os.waitpid(pid, 0)

    worker = limiter_in(table, 0, 3)
    first = worker.admit("192.0.2.7", "smtp")
    assert first is not None
    assert worker.admit("192.0.2.7", "smtp") is None
    assert worker.open_connections("192.0.2.7") == 3
    first.release()
    assert worker.open_connections("192.0.2.7") == 2
    # A restarted worker 1 drops the connections its predecessor held.
    table.clear_worker(1)
    assert worker.admit("192.0.2.7", "smtp") is not None


def test_automatic_ban_holds_in_other_worker() -> None:
    table = SharedTable(workers=2, slots=256)
    pid = os.fork()
    if pid == 0:
        worker = limiter_in(table, 1, 10)
        worker.lockout.record_failure("192.0.2.8", "alice")
        worker.lockout.record_failure("192.0.2.8", "alice")
        os._exit(0 if worker.lockout.is_banned("192.0.2.8") else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    worker = limiter_in(table, 0, 10)
    assert worker.lockout.is_banned("192.0.2.8")
    assert worker.admit("192.0.2.8", "smtp") is None
    assert worker.admit("192.0.2.9", "smtp") is not None


def test_removed_ban_clears_failures_in_every_worker() -> None:
    table = SharedTable(workers=2, slots=256)
    limits = LimitsSettings(ban_after_failures=3)
    first = AuthLockout(limits, shared=table, worker=0)
    second = AuthLockout(limits, shared=table, worker=1)
    # The second worker saw two failures, then the first one banned.
    second.record_failure("192.0.2.30", "alice")
    second.record_failure("192.0.2.30", "alice")
    for _ in range(3):
        first.record_failure("192.0.2.30", "alice")
    assert second.is_banned("192.0.2.30")
    first.lift("192.0.2.30")
    assert not second.is_banned("192.0.2.30")
    # One new failure in the second worker is one, not three.
    second.record_failure("192.0.2.30", "alice")
    assert not second.is_banned("192.0.2.30")
    assert second.failures("192.0.2.30") == 1


def test_failures_counted_over_workers() -> None:
    table = SharedTable(workers=2, slots=256)
    limits = LimitsSettings(ban_after_failures=3)
    first = AuthLockout(limits, shared=table, worker=0)
    second = AuthLockout(limits, shared=table, worker=1)
    first.record_failure("192.0.2.40", "alice")
    second.record_failure("192.0.2.40", "alice")
    assert not first.is_banned("192.0.2.40")
    # The third failure over both workers bans, wherever it lands.
    first.record_failure("192.0.2.40", "alice")
    assert first.is_banned("192.0.2.40")
    assert second.is_banned("192.0.2.40")
    # Another address has its own count.
    second.record_failure("192.0.2.41", "alice")
    assert not second.is_banned("192.0.2.41")


def test_last_place_taken_once_across_processes() -> None:
    table = SharedTable(workers=3, slots=256)
    # Two workers race for the last of 5 places, 200 times each.
    reader, writer = os.pipe()
    children = []
    for worker in (1, 2):
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            admitted = sum(bool(table.try_add("ip:race", worker, 5)) for _ in range(200))
            os.write(writer, bytes([admitted]))
            os._exit(0)
        children.append(pid)
    os.close(writer)
    admitted = [os.read(reader, 1)[0] for _ in children]
    for pid in children:
        os.waitpid(pid, 0)
    os.close(reader)
    assert sum(admitted) == 5
    assert table.total("ip:race") == 5
    assert table.try_add("ip:race", 0, 0) is True
