#!/usr/bin/env python3
"""SMTP receiving throughput of Garrison, driven by Postfix's smtp-source.

Sets up a throw-away Garrison data directory, starts `garrison serve` with one
SMTP listener on 127.0.0.1, and runs

    smtp-source -s SESSIONS -l SIZE -m COUNT -f bench@example.org \
        -t alice@example.test 127.0.0.1:PORT

It prints messages per second (all COUNT messages acknowledged with 250 and
durable) and the server's CPU milliseconds per message, read from /proc for
the server's process tree and including the full-text indexing that runs
after the acknowledgements. After the run it
checks that COUNT messages are in alice's INBOX.

With --peer HOST:PORT it runs the same load against another SMTP server in
the same sitting (for example Postfix delivering to a Maildir), and with
--peer-pid PID (repeatable) or --peer-cgroup DIR it reads that server's CPU,
then prints the ratios.

`--set SECTION.KEY=VALUE` (repeatable) changes a setting of the Garrison
server, for example `--set spam.enabled=false`.

Requires /usr/sbin/smtp-source (Debian package postfix). Traffic goes only
to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GARRISON = ROOT / ".venv" / "bin" / "garrison"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """Return the pid and all its descendants (the supervisor and its workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found.extend(process_tree(int(child)))
    return found


def process_cpu_seconds(pids: list[int]) -> float:
    """Return the CPU seconds (user + system) used so far by the processes.

    Includes the CPU of children they have already reaped, as Postfix's
    master reaps its short-lived smtpd, cleanup and virtual processes.
    """
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
    return total


def tree_cpu_seconds(root: int) -> float:
    """Return the CPU seconds of a process and all its descendants, now."""
    total = 0.0
    for pid in process_tree(root):
        try:
            total += process_cpu_seconds([pid])
        except FileNotFoundError:
            continue
    return total


def cgroup_cpu_seconds(path: Path) -> float:
    for line in (path / "cpu.stat").read_text().splitlines():
        key, value = line.split()
        if key == "usage_usec":
            return int(value) / 1e6
    raise RuntimeError(f"no usage_usec in {path}/cpu.stat")


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not listen on port {port} within {timeout} s")


def set_config_values(text: str, settings: list[str]) -> str:
    """Return the config text with each SECTION.KEY=VALUE put into its table."""
    for setting in settings:
        name, _, value = setting.partition("=")
        section, _, key = name.partition(".")
        head, marker, tail = text.partition(f"[{section}]\n")
        if not marker or not key or not value:
            raise SystemExit(f"invalid --set {setting!r}; use SECTION.KEY=VALUE")
        body, next_table, rest = tail.partition("\n[")
        lines = [line for line in body.split("\n") if not line.startswith(f"{key} =")]
        body = "\n".join([f"{key} = {value}", *lines])
        text = head + marker + body + next_table + rest
    return text


def start_garrison(
    workdir: Path, workers: int = 0, settings: list[str] | None = None
) -> tuple[subprocess.Popen, int, Path]:
    data = workdir / "var"
    subprocess.run(
        [str(GARRISON), "init", "--data-dir", str(data)],
        check=True, stdout=subprocess.DEVNULL,
    )
    port = free_port()
    config = data / "garrison.toml"
    text = config.read_text()
    head, _, _ = text.partition("[[listeners]]")
    # The load comes from one address at hundreds of connections a second,
    # over the per-IP rate limit; DNS lookups may go to loopback only.
    defaults = ["limits.connection_rate_per_ip=0", 'dns.nameservers=["127.0.0.1:9"]']
    head = set_config_values(head, [*defaults, *(settings or [])])
    config.write_text(
        head.replace('log_level = "INFO"', 'log_level = "WARNING"').replace(
            "workers = 0", f"workers = {workers}"
        )
        + f'[[listeners]]\nname = "smtp"\nprotocol = "smtp"\n'
        f'address = "127.0.0.1"\nport = {port}\ntls = "starttls"\n'
    )
    server = subprocess.Popen(
        [str(GARRISON), "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "server.log", "wb"),
    )
    wait_for_port(port)
    return server, port, data / "garrison.db"


def wait_until_indexed(db: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while unindexed_count(db) and time.monotonic() < deadline:
        time.sleep(0.1)


def inbox_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
            " JOIN accounts a ON a.id = b.account_id"
            " WHERE a.address = 'alice@example.test' AND b.name = 'INBOX'"
        ).fetchone()
    finally:
        conn.close()
    return count


def maildir_count(maildir: Path | None) -> int:
    if maildir is None:
        return 0
    try:
        return sum(1 for entry in os.scandir(maildir / "new") if entry.is_file())
    except FileNotFoundError:
        return 0


def unindexed_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM blobs AS b WHERE NOT EXISTS"
            " (SELECT 1 FROM search_docs AS d WHERE d.blob_id = b.id)"
        ).fetchone()
    finally:
        conn.close()
    return count


def run_load(
    args: argparse.Namespace,
    target: str,
    rcpt: str,
    cpu,
    maildir: Path | None = None,
    settle=None,
) -> dict:
    source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    command = [
        source, "-4", "-s", str(args.sessions), "-l", str(args.size),
        "-m", str(args.count), "-f", "bench@example.org", "-t", rcpt,
        "-M", "bench.example.org",
    ]
    if args.persistent:
        command.insert(1, "-d")
    command.append(target)
    delivered_before = maildir_count(maildir)
    cpu_before = cpu()
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    # A peer that queues before delivering counts as done when its Maildir
    # contains every message, so both sides are timed to durable delivery.
    deadline = time.monotonic() + 600
    while maildir and maildir_count(maildir) - delivered_before < args.count:
        if time.monotonic() > deadline:
            raise SystemExit(f"peer delivered too few messages into {maildir}")
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    if settle is not None:
        # Work the server does after acknowledging (Garrison's full-text
        # indexing) is counted in its CPU per message.
        settle()
    cpu_used = cpu() - cpu_before
    if result.returncode != 0:
        raise SystemExit(f"smtp-source failed: {result.stderr.strip()[-400:]}")
    return {
        "msg_per_s": args.count / elapsed,
        "cpu_ms_per_msg": 1000 * cpu_used / args.count,
        "seconds": elapsed,
    }


def summarize(name: str, runs: list[dict]) -> dict:
    rates = [r["msg_per_s"] for r in runs]
    cpus = [r["cpu_ms_per_msg"] for r in runs]
    summary = {
        "msg_per_s": statistics.median(rates),
        "cpu_ms_per_msg": statistics.median(cpus),
    }
    print(
        f"{name:10s} {summary['msg_per_s']:8.0f} msg/s (runs {min(rates):.0f}-{max(rates):.0f})"
        f"  {summary['cpu_ms_per_msg']:6.2f} ms CPU/msg"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=10240)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--persistent", action="store_true", help="smtp-source -d")
    parser.add_argument(
        "--workers", type=int, default=0, help="Garrison worker processes (0: one per core)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="Garrison setting in TOML syntax, e.g. spam.enabled=false (repeatable)",
    )
    parser.add_argument("--peer", help="HOST:PORT of a peer SMTP server to compare")
    parser.add_argument("--peer-rcpt", default="user1@example.test")
    parser.add_argument(
        "--peer-pid", type=int, help="root process of the peer (its tree is measured)"
    )
    parser.add_argument("--peer-cgroup", type=Path)
    parser.add_argument(
        "--peer-maildir", type=Path, help="wait until the peer delivered into this Maildir"
    )
    args = parser.parse_args()

    results: dict[str, list[dict]] = {"garrison": [], "peer": []}
    workdir = Path(tempfile.mkdtemp(prefix="garrison-bench-"))
    server, port, db = start_garrison(workdir, args.workers, args.set)
    time.sleep(2)  # let every worker finish starting
    try:
        for run in range(args.runs):
            before = inbox_count(db)
            results["garrison"].append(
                run_load(args, f"127.0.0.1:{port}", "alice@example.test",
                         lambda: tree_cpu_seconds(server.pid),
                         settle=lambda: wait_until_indexed(db))
            )
            stored = inbox_count(db) - before
            if stored != args.count:
                raise SystemExit(f"run {run}: {stored} of {args.count} messages stored")
            if args.peer:
                if args.peer_cgroup:
                    peer_cpu = lambda: cgroup_cpu_seconds(args.peer_cgroup)  # noqa: E731
                else:
                    peer_cpu = lambda: tree_cpu_seconds(args.peer_pid)  # noqa: E731
                results["peer"].append(run_load(
                    args, args.peer, args.peer_rcpt, peer_cpu, args.peer_maildir
                ))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"load: smtp-source -s {args.sessions} -l {args.size} -m {args.count}"
          f"{' -d' if args.persistent else ''}, {args.runs} runs, median")
    ours = summarize("garrison", results["garrison"])
    if results["peer"]:
        theirs = summarize("peer", results["peer"])
        print(f"ratio      {ours['msg_per_s'] / theirs['msg_per_s']:.2f}x msg/s, "
              f"{ours['cpu_ms_per_msg'] / theirs['cpu_ms_per_msg']:.2f}x CPU/msg "
              "(garrison / peer)")


if __name__ == "__main__":
    sys.exit(main())
