#!/usr/bin/env python3
"""A private Postfix instance on loopback, the peer for bench/smtp_bench.py.

    bench/postfix_peer.py DIR PORT

runs Postfix in the foreground (`postfix -c DIR/conf start-fg`) with its own
config, queue and data directories under DIR, accepting mail for
example.test on 127.0.0.1:PORT and delivering it with virtual(8) into
Maildirs under DIR/mail (user1@example.test -> DIR/mail/user1/). It sends
nothing outward: every other transport is error(8). Stop it with Ctrl-C or
SIGTERM; the system's own Postfix configuration is not touched. Needs root
and Debian's postfix package.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

SERVICES = [
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "proxymap unix - - n - - proxymap",
    "showq unix n - n - - showq",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "discard unix - - n - - discard",
    "virtual unix - n n - - virtual",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
]


def write_config(base: Path, port: int) -> Path:
    config = base / "conf"
    for sub in ("conf", "queue", "data", "mail"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam("postfix")
    for sub in ("data", "mail"):
        os.chown(base / sub, owner.pw_uid, owner.pw_gid)
    (config / "vmailbox").write_text("user1@example.test user1/\n")
    main = {
        "compatibility_level": "3.6",
        "queue_directory": base / "queue",
        "data_directory": base / "data",
        "mail_owner": "postfix",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "myhostname": "peer.example.test",
        "mydestination": "",
        "mynetworks": "127.0.0.0/8",
        "virtual_mailbox_domains": "example.test",
        "virtual_mailbox_base": base / "mail",
        "virtual_mailbox_maps": f"texthash:{config / 'vmailbox'}",
        "virtual_minimum_uid": "1",
        "virtual_uid_maps": f"static:{owner.pw_uid}",
        "virtual_gid_maps": f"static:{owner.pw_gid}",
        "default_transport": "error:no outbound mail from the benchmark peer",
        "relay_transport": "error:no outbound mail from the benchmark peer",
        "smtpd_peername_lookup": "no",
        "maillog_file": base / "postfix.log",
        # Postfix writes its log only under these prefixes (default /var).
        "maillog_file_prefixes": base,
        "alias_maps": "",
        "alias_database": "",
    }
    (config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
    (config / "master.cf").write_text(
        "\n".join([f"127.0.0.1:{port} inet n - n - - smtpd", *SERVICES]) + "\n"
    )
    return config


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.split("\n\n")[1])
    base, port = Path(sys.argv[1]).resolve(), int(sys.argv[2])
    config = write_config(base, port)
    master = subprocess.Popen(["postfix", "-c", str(config), "start-fg"])
    print(f"postfix master pid {master.pid} on 127.0.0.1:{port}", flush=True)

    def stop(signum: int, frame: object) -> None:
        subprocess.run(["postfix", "-c", str(config), "stop"], capture_output=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    master.wait()


if __name__ == "__main__":
    main()
