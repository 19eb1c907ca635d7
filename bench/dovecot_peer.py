#!/usr/bin/env python3
"""A private Dovecot instance on loopback, the peer for bench/imap_bench.py.

    bench/dovecot_peer.py DIR PORT USERS

runs Dovecot in the foreground (`dovecot -F -c DIR/dovecot.conf`) with its
own base directory, serving IMAP without TLS on 127.0.0.1:PORT for
imap1..imapUSERS@example.test, password "pass" (a passwd-file with PLAIN
passwords, as a benchmark needs no hashing cost), with Maildirs under
DIR/mail. Stop it with Ctrl-C or SIGTERM; the system's Dovecot
configuration is not touched. Needs root and Debian's dovecot-imapd.
"""

from __future__ import annotations

import pwd
import signal
import subprocess
import sys
from pathlib import Path

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = garrison-bench-peer
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {base}/dovecot.log
mail_location = maildir:{base}/mail/%n
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap {{
  process_limit = 1024
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%n
}}
"""


def main() -> None:
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.split("\n\n")[1])
    base, port, users = Path(sys.argv[1]).resolve(), int(sys.argv[2]), int(sys.argv[3])
    for sub in ("run", "state", "mail"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam("dovecot")
    subprocess.run(["chown", "-R", f"{owner.pw_uid}:{owner.pw_gid}", str(base / "mail")])
    (base / "users").write_text(
        "".join(f"imap{i}@example.test:{{PLAIN}}pass\n" for i in range(1, users + 1))
    )
    config = base / "dovecot.conf"
    config.write_text(
        CONFIG.format(base=base, port=port, uid=owner.pw_uid, gid=owner.pw_gid)
    )
    server = subprocess.Popen(["dovecot", "-F", "-c", str(config)])
    print(f"dovecot pid {server.pid} on 127.0.0.1:{port}", flush=True)

    def stop(signum: int, frame: object) -> None:
        server.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait()


if __name__ == "__main__":
    main()
