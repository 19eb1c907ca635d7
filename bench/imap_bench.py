#!/usr/bin/env python3
"""IMAP webmail-style load on Garrison, optionally side by side with a peer.

Sets up a throw-away Garrison data directory with USERS accounts
(bench1..benchN@example.test), fills each INBOX with COUNT generated messages
over IMAP APPEND, then runs CLIENTS client processes for SECS seconds. Client
i works on account i (one mailbox per client). Each session is:

    LOGIN, SELECT INBOX,
    FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE
               BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)]),
    10 x UID FETCH <random uid> (BODY.PEEK[]),
    UID STORE <uid> +FLAGS (\\Seen), UID STORE <uid> -FLAGS (\\Seen), LOGOUT

It prints sessions per second, commands per second and server CPU
milliseconds per session, read from /proc for the server's process tree.

With --peer-port the same load runs against another IMAP server in the same
sitting (for example Dovecot on 127.0.0.1:1143 with users imap1..imap20 and
password "pass": --peer-user 'imap%d@example.test' --peer-password pass;
bench/dovecot_peer.py runs such a Dovecot), with its CPU read from the
process tree of --peer-pid or from --peer-cgroup, and the ratios are
printed. --peer-seed fills the peer's mailboxes first.

Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import imaplib
import multiprocessing
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_bench import (  # noqa: E402
    GARRISON,
    cgroup_cpu_seconds,
    free_port,
    tree_cpu_seconds,
    wait_for_port,
)

HEADER_FETCH = (
    "(UID FLAGS RFC822.SIZE INTERNALDATE "
    "BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])"
)
PASSWORD = "bench-password-1"
WORDS = (
    "mail server queue message delivery report meeting budget invoice project "
    "status update review schedule release backup network storage account"
).split()


def make_message(rng: random.Random, index: int) -> bytes:
    """Return a plausible message of 2 to 20 KiB, the same for the same seed."""
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    lines = []
    for _ in range(rng.randint(30, 300)):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))))
    body = "\r\n".join(lines)
    return (
        f"From: Sender {index} <sender{index % 37}@example.org>\r\n"
        f"To: Reader <reader@example.test>\r\n"
        f"Cc: team{index % 5}@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 2 Nov 2026 10:{index % 60:02d}:00 +0000\r\n"
        f"Message-ID: <{index}.{rng.getrandbits(32):x}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n" + body + "\r\n"
    ).encode()


def start_garrison(workdir: Path, users: int) -> tuple[subprocess.Popen, int]:
    data = workdir / "var"
    subprocess.run(
        [str(GARRISON), "init", "--data-dir", str(data)],
        check=True, stdout=subprocess.DEVNULL,
    )
    config = data / "garrison.toml"
    for i in range(1, users + 1):
        subprocess.run(
            [str(GARRISON), "user", "add", f"bench{i}@example.test",
             "--password-stdin", "--config", str(config)],
            input=f"{PASSWORD}\n".encode(), check=True, stdout=subprocess.DEVNULL,
        )
    port = free_port()
    head, _, _ = config.read_text().partition("[[listeners]]")
    config.write_text(
        head.replace('log_level = "INFO"', 'log_level = "WARNING"')
        + f'[[listeners]]\nname = "imap"\nprotocol = "imap"\n'
        f'address = "127.0.0.1"\nport = {port}\ntls = "starttls"\n'
    )
    server = subprocess.Popen(
        [str(GARRISON), "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "server.log", "wb"),
    )
    wait_for_port(port)
    time.sleep(1)
    return server, port


def seed(port: int, user_pattern: str, password: str, users: int, count: int) -> None:
    rng = random.Random(20261204)
    messages = [make_message(rng, i) for i in range(count)]
    for i in range(1, users + 1):
        client = imaplib.IMAP4("127.0.0.1", port)
        client.login(user_pattern % i, password)
        typ, data = client.select("INBOX")
        if int(data[0]) > 0:
            client.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
            client.expunge()
        for message in messages:
            client.append("INBOX", None, None, message)
        client.logout()


def client_loop(args: tuple) -> tuple[int, int]:
    port, user, password, seconds, seed_value = args
    rng = random.Random(seed_value)
    sessions = commands = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client = imaplib.IMAP4("127.0.0.1", port)
        client.login(user, password)
        typ, data = client.select("INBOX")
        count = int(data[0])
        typ, rows = client.fetch("1:*", HEADER_FETCH)
        if typ != "OK" or count == 0:
            raise SystemExit(f"FETCH failed for {user}: {typ}")
        typ, data = client.uid("SEARCH", "ALL")
        uids = data[0].split()
        for uid in rng.sample(uids, min(10, len(uids))):
            client.uid("FETCH", uid, "(BODY.PEEK[])")
        uid = rng.choice(uids)
        client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        client.uid("STORE", uid, "-FLAGS", "(\\Seen)")
        client.logout()
        sessions += 1
        commands += 17
    return sessions, commands


def run_load(port: int, user_pattern: str, password: str, args, cpu) -> dict:
    jobs = [
        (port, user_pattern % (i + 1), password, args.secs, i) for i in range(args.clients)
    ]
    cpu_before = cpu()
    started = time.monotonic()
    with multiprocessing.Pool(args.clients) as pool:
        results = pool.map(client_loop, jobs)
    elapsed = time.monotonic() - started
    cpu_used = cpu() - cpu_before
    sessions = sum(r[0] for r in results)
    commands = sum(r[1] for r in results)
    return {
        "sessions_per_s": sessions / elapsed,
        "commands_per_s": commands / elapsed,
        "cpu_ms_per_session": 1000 * cpu_used / max(sessions, 1),
    }


def report(name: str, runs: list[dict]) -> dict:
    summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(
        f"{name:10s} {summary['sessions_per_s']:7.1f} sessions/s"
        f"  {summary['commands_per_s']:8.0f} commands/s"
        f"  {summary['cpu_ms_per_session']:6.2f} ms CPU/session"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--secs", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-port", type=int)
    parser.add_argument("--peer-user", default="imap%d@example.test")
    parser.add_argument("--peer-password", default="pass")
    parser.add_argument(
        "--peer-pid", type=int, help="root process of the peer (its tree is measured)"
    )
    parser.add_argument("--peer-cgroup", type=Path)
    parser.add_argument("--peer-seed", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="garrison-imap-bench-"))
    server, port = start_garrison(workdir, args.clients)
    results: dict[str, list[dict]] = {"garrison": [], "peer": []}
    try:
        seed(port, "bench%d@example.test", PASSWORD, args.clients, args.count)
        if args.peer_port and args.peer_seed:
            seed(args.peer_port, args.peer_user, args.peer_password, args.clients, args.count)
        for _ in range(args.runs):
            results["garrison"].append(
                run_load(port, "bench%d@example.test", PASSWORD, args,
                         lambda: tree_cpu_seconds(server.pid))
            )
            if args.peer_port:
                if args.peer_cgroup:
                    peer_cpu = lambda: cgroup_cpu_seconds(args.peer_cgroup)  # noqa: E731
                else:
                    peer_cpu = lambda: tree_cpu_seconds(args.peer_pid)  # noqa: E731
                results["peer"].append(
                    run_load(args.peer_port, args.peer_user, args.peer_password, args,
                             peer_cpu)
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"load: {args.clients} clients x {args.count} messages, {args.secs:.0f} s,"
          f" {args.runs} runs, median")
    ours = report("garrison", results["garrison"])
    if results["peer"]:
        theirs = report("peer", results["peer"])
        print(
            f"ratio      {ours['sessions_per_s'] / theirs['sessions_per_s']:.2f}x sessions/s,"
            f" {ours['cpu_ms_per_session'] / theirs['cpu_ms_per_session']:.2f}x CPU/session"
            " (garrison / peer)"
        )


if __name__ == "__main__":
    main()
