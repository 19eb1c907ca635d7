"""Reference FETCH output from Dovecot's imap binary, for differential tests.

`fetch(messages)` writes the messages into a throwaway Maildir, runs
Dovecot's `imap` process in PREAUTH mode on a pipe (no network), and
returns ENVELOPE, BODYSTRUCTURE and BODY of each message as raw wire bytes.
`run_commands(messages, commands)` runs any commands the same way and
returns the raw output.
It needs Debian's dovecot-imapd and root (the process runs as `nobody`,
because Dovecot refuses to serve mail as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

IMAP_BINARY = Path("/usr/lib/dovecot/imap")
ITEMS = (b"ENVELOPE", b"BODYSTRUCTURE", b"BODY")

_CONFIG = """\
base_dir = {root}/run
mail_location = maildir:{root}/mail
log_path = {root}/log
ssl = no
listen =
protocols = imap
{extra}"""


def available() -> bool:
    """Return True if Dovecot's imap binary can be run here."""
    return (
        IMAP_BINARY.exists()
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("setpriv") is not None
    )


def _value_end(data: bytes, pos: int) -> int:
    """Return the offset after the IMAP value (atom, string, literal, list) at pos."""
    depth = 0
    while True:
        byte = data[pos : pos + 1]
        if byte == b"(":
            depth += 1
            pos += 1
        elif byte == b")":
            depth -= 1
            pos += 1
        elif byte == b'"':
            pos += 1
            while data[pos : pos + 1] != b'"':
                pos += 2 if data[pos : pos + 1] == b"\\" else 1
            pos += 1
        elif byte == b"{":
            close = data.index(b"}", pos)
            size = int(data[pos + 1 : close])
            pos = close + 3 + size
        elif byte == b" ":
            pos += 1
        else:
            while data[pos : pos + 1] not in (b" ", b")", b"(", b""):
                pos += 1
        if depth == 0:
            return pos


def _parse_fetch(response: bytes) -> dict[int, dict[bytes, bytes]]:
    results: dict[int, dict[bytes, bytes]] = {}
    pos = 0
    while True:
        start = response.find(b"\r\n* ", pos)
        if start < 0:
            break
        line = start + 4
        space = response.index(b" ", line)
        if not response.startswith(b"FETCH (", space + 1):
            pos = line
            continue
        number = int(response[line:space])
        pos = space + len(b" FETCH (")
        items: dict[bytes, bytes] = {}
        while response[pos : pos + 1] != b")":
            name_end = response.index(b" ", pos)
            name = response[pos:name_end]
            value_end = _value_end(response, name_end + 1)
            items[name] = response[name_end + 1 : value_end]
            pos = value_end
            if response[pos : pos + 1] == b" ":
                pos += 1
        results[number] = items
    return results


def _run_session(command: list[str], command_lines: bytes) -> bytes:
    """Run one PREAUTH session and return its output up to the tagged a2 reply.

    `command_lines` is one or more CRLF-separated commands, the last tagged
    a2. Standard input stays open until a2 completes, because the imap
    process stops writing once it reads end of input.
    """
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b"a1 SELECT INBOX\r\n" + command_lines + b"\r\n")
        process.stdin.flush()
        output = bytearray()
        deadline = time.monotonic() + 60
        while b"\r\na2 " not in output and time.monotonic() < deadline:
            chunk = process.stdout.read1(65536)
            if not chunk:
                break
            output += chunk
        process.stdin.write(b"a3 LOGOUT\r\n")
        process.stdin.close()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return bytes(output)


def fetch(messages: list[bytes]) -> list[dict[bytes, bytes]]:
    """Return Dovecot's ENVELOPE, BODYSTRUCTURE and BODY for each message, in order."""
    output = run_commands(messages, [b"FETCH 1:* (" + b" ".join(ITEMS) + b")"])
    parsed = _parse_fetch(output)
    missing = [n for n in range(1, len(messages) + 1) if n not in parsed]
    if missing:
        raise RuntimeError(
            f"Dovecot returned no FETCH for messages {missing[:10]}: "
            f"{output[-2000:]!r}"
        )
    return [parsed[number] for number in range(1, len(messages) + 1)]


def run_commands(
    messages: list[bytes], commands: list[bytes], config: str = ""
) -> bytes:
    """Run `commands` after SELECT INBOX over `messages`; return the raw output.

    The commands are tagged c1, c2, ... except the last, which is tagged a2,
    and the output ends with its tagged reply. `config` is appended to the Dovecot configuration,
    for example a namespace with special-use mailboxes.
    """
    root = Path(tempfile.mkdtemp(prefix="garrison-dovecot-"))
    try:
        for sub in ("mail/new", "mail/cur", "mail/tmp", "run", "home"):
            (root / sub).mkdir(parents=True)
        for index, message in enumerate(messages):
            (root / "mail/cur" / f"{1000000 + index}.M{index}P1.test:2,").write_bytes(
                message
            )
        (root / "dovecot.conf").write_text(_CONFIG.format(root=root, extra=config))
        shutil.chown(root, "nobody", "nogroup")
        for path in root.rglob("*"):
            shutil.chown(path, "nobody", "nogroup")
        command = [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "env",
            "USER=nobody",
            f"HOME={root}/home",
            str(IMAP_BINARY),
            "-c",
            str(root / "dovecot.conf"),
        ]
        lines = [b"c%d %s" % (number, text) for number, text in enumerate(commands, 1)]
        lines[-1] = b"a2 " + commands[-1]
        return _run_session(command, b"\r\n".join(lines))
    finally:
        shutil.rmtree(root, ignore_errors=True)
