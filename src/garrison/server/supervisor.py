"""The process supervisor behind `garrison serve`.

It binds every listener once, prepares the database, then forks the worker
processes; all workers accept on the same listening sockets and share the
SQLite database (WAL) and the blob store. The supervisor itself runs no
event loop: it forwards SIGTERM and SIGINT to the workers, waits for them
to finish their sessions, and restarts a worker that dies unexpectedly.
With one worker, the worker runs in the supervisor's process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import socket
import sys
import time

from garrison.config import Settings
from garrison.db.engine import migrate
from garrison.net import shared
from garrison.observability.log import event
from garrison.server import runner
from garrison.store.blobs import BlobStore

log = logging.getLogger("garrison.server")
_RESTART_PAUSE = 1.0
_MIN_UPTIME = 5.0
_SWITCH_INTERVAL = 0.0005


class ListenerBindError(OSError):
    """A listener could not bind; the message names it, its address and port."""


def bind_listeners(settings: Settings) -> dict[str, socket.socket]:
    """Bind and listen on every configured address; raise ListenerBindError."""
    sockets: dict[str, socket.socket] = {}
    try:
        for listener in settings.listeners:
            family = socket.AF_INET6 if ":" in listener.address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((listener.address, listener.port))
                sock.listen(1024)
            except OSError as exc:
                sock.close()
                raise ListenerBindError(
                    f"listener {listener.name!r} cannot bind {listener.address}"
                    f" port {listener.port}: {exc.strerror}"
                ) from None
            sock.setblocking(False)
            sockets[listener.name] = sock
    except OSError:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def _run_worker(settings: Settings, sockets: dict[str, socket.socket], index: int, count: int) -> None:
    import uvloop

    # The event loop thread shares the GIL with the store's writer thread and
    # the fsync workers. A short switch interval lets it take the GIL back
    # quickly after each blocking call instead of waiting up to 5 ms.
    sys.setswitchinterval(_SWITCH_INTERVAL)
    uvloop.install()
    asyncio.run(runner.serve(settings, sockets, (index, count)))


def _spawn(
    settings: Settings,
    sockets: dict[str, socket.socket],
    index: int,
    count: int,
    table: shared.SharedTable,
) -> int:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        code = 0
        try:
            shared.install(table, index)
            _run_worker(settings, sockets, index, count)
        except BaseException:
            log.exception("event=worker_crashed worker=%d", index)
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
    event(log, "worker_started", worker=index, pid=pid)
    return pid


def supervise(settings: Settings) -> int:
    """Bind, fork the workers and run until SIGTERM or SIGINT.

    Returns the exit status: 1 when a worker failed right after starting.
    """
    # Each session holds a socket; allow as many as the hard limit permits.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets = bind_listeners(settings)
    migrate(settings.db_path)
    BlobStore(settings.blob_dir, settings.spool_dir).cleanup_spool()
    count = settings.server.workers or os.cpu_count() or 1
    if count == 1:
        _run_worker(settings, sockets, 0, 1)
        return 0

    class StopRequested(Exception):
        pass

    def request_stop(signum: int, _frame: object) -> None:
        # Raising interrupts the blocking waitpid below (PEP 475 would
        # otherwise retry it).
        raise StopRequested

    # Connection counts and automatic bans that hold across the workers.
    table = shared.SharedTable(count)
    workers: dict[int, int] = {}
    started: dict[int, float] = {}
    failed = False
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        for index in range(count):
            pid = _spawn(settings, sockets, index, count, table)
            workers[pid], started[index] = index, time.monotonic()
        while workers:
            pid, status = os.waitpid(-1, 0)
            index = workers.pop(pid, None)
            if index is None:
                continue
            event(log, "worker_exited", logging.ERROR, worker=index, pid=pid, status=status)
            if time.monotonic() - started[index] < _MIN_UPTIME:
                # A worker that dies right after starting will do so again.
                failed = True
                break
            time.sleep(_RESTART_PAUSE)
            pid = _spawn(settings, sockets, index, count, table)
            workers[pid], started[index] = index, time.monotonic()
    except StopRequested:
        pass
    except ChildProcessError:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    event(log, "stopping", workers=len(workers))
    for pid in workers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + settings.server.shutdown_grace + 15
    while workers and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
            continue
        workers.pop(pid, None)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    for sock in sockets.values():
        sock.close()
    event(log, "stopped", failed=failed)
    return 1 if failed else 0
