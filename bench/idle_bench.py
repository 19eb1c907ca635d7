#!/usr/bin/env python3
"""Memory of many concurrent IMAP IDLE sessions on Garrison.

Sets up a throw-away Garrison data directory with USERS accounts, starts
`garrison serve` with one IMAP listener on 127.0.0.1, then opens SESSIONS
connections that each LOGIN, SELECT INBOX and IDLE. It prints the resident
memory (VmRSS) of the server's process tree before and with all sessions
idling, in total and per session, then ends every session.

With --peer-port it does the same against another IMAP server (for example
bench/dovecot_peer.py, users imap1..N@example.test, password "pass") and
reads the RSS of the process tree of --peer-pid.

Raises its own open-file limit to the hard limit; the server does the same.
Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imap_bench import PASSWORD, start_garrison  # noqa: E402
from smtp_bench import process_tree  # noqa: E402


def tree_rss_bytes(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            continue
    return total


async def idle_session(port: int, user: str, password: str, ready: asyncio.Queue):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(f'a LOGIN {user} "{password}"\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError(f"{user}: connection closed before IDLE")
        if line.startswith((b"a NO", b"a BAD", b"b NO", b"b BAD", b"c BAD")):
            raise ConnectionError(f"{user}: {line!r}")
        if line.startswith(b"+"):
            break
    await ready.put(1)
    return reader, writer


async def run(port: int, user_pattern: str, password: str, users: int, sessions: int,
              root: int) -> tuple[int, int]:
    before = tree_rss_bytes(root)
    ready: asyncio.Queue = asyncio.Queue()
    semaphore = asyncio.Semaphore(200)

    async def one(index: int):
        async with semaphore:
            return await idle_session(
                port, user_pattern % (index % users + 1), password, ready
            )

    started = time.monotonic()
    connections = await asyncio.gather(*(one(i) for i in range(sessions)))
    print(f"  {sessions} sessions idling after {time.monotonic() - started:.1f} s")
    await asyncio.sleep(2)
    during = tree_rss_bytes(root)
    for reader, writer in connections:
        writer.write(b"DONE\r\nd LOGOUT\r\n")
    for reader, writer in connections:
        writer.close()
    await asyncio.sleep(1)
    return before, during


def report(name: str, before: int, during: int, sessions: int) -> None:
    MiB = 1024 * 1024
    print(
        f"{name:10s} RSS {before / MiB:7.1f} MiB idle -> {during / MiB:7.1f} MiB with"
        f" {sessions} IDLE sessions: {(during - before) / sessions / 1024:.1f} KiB/session"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--peer-port", type=int)
    parser.add_argument("--peer-pid", type=int)
    parser.add_argument("--peer-user", default="imap%d@example.test")
    parser.add_argument("--peer-password", default="pass")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.sessions + 100:
        raise SystemExit(f"open-file limit {hard} is too low for {args.sessions} sessions")

    workdir = Path(tempfile.mkdtemp(prefix="garrison-idle-bench-"))
    server, port = start_garrison(workdir, args.users)
    try:
        before, during = asyncio.run(
            run(port, "bench%d@example.test", PASSWORD, args.users, args.sessions,
                server.pid)
        )
        report("garrison", before, during, args.sessions)
        if args.peer_port:
            before, during = asyncio.run(
                run(args.peer_port, args.peer_user, args.peer_password, args.users,
                    args.sessions, args.peer_pid)
            )
            report("peer", before, during, args.sessions)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
