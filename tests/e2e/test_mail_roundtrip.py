"""A MIME message sent with swaks and smtp-source, read back with four clients.

The message is multipart/mixed with a GB2312 encoded-word subject and a
base64 attachment of random bytes. It goes in over SMTP with swaks and with
Postfix's smtp-source, and comes back over IMAPS (imaplib and mbsync) and
POP3S (poplib and fetchmail). After the trace headers the server prepends
(Return-Path, Received), every copy must equal what was sent: byte for byte
for imaplib and poplib, and up to line endings for mbsync and fetchmail,
which store messages with LF line endings.
"""

from __future__ import annotations

import base64
import imaplib
import os
import poplib
import re
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ALICE,
    BOB,
    HOSTNAME,
    PASSWORD,
    GarrisonProcess,
    require_tool,
)

pytestmark = pytest.mark.e2e

CLIENT_TIMEOUT = 60

# "测试邮件：附件" (test mail: attachment) in GB2312.
SUBJECT_TEXT = "\u6d4b\u8bd5\u90ae\u4ef6\uff1a\u9644\u4ef6"


def build_message(tag: str) -> bytes:
    """Return a multipart/mixed message with CRLF line endings.

    `tag` goes into the Message-ID and the body, so the copies sent by
    different clients can be distinguished.
    """
    subject = base64.b64encode(SUBJECT_TEXT.encode("gb2312")).decode()
    # "你好，这是测试。" (hello, this is a test) in GB2312.
    body_text = "\u4f60\u597d\uff0c\u8fd9\u662f\u6d4b\u8bd5\u3002".encode("gb2312")
    lines = [
        f"From: Bob <{BOB}>",
        f"To: Alice <{ALICE}>",
        f"Subject: =?GB2312?B?{subject}?=",
        "Date: Thu, 03 Dec 2026 10:00:00 +0000",
        f"Message-ID: <{tag}@client.example.test>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_boundary_42"',
        "",
        "This is a multi-part message in MIME format.",
        "",
        "--=_boundary_42",
        'Content-Type: text/plain; charset="GB2312"',
        "Content-Transfer-Encoding: base64",
        "",
        base64_lines(body_text + f"\r\n{tag}\r\n".encode()),
        "",
        "--=_boundary_42",
        'Content-Type: application/octet-stream; name="random.bin"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="random.bin"',
        "",
        base64_lines(os.urandom(6 * 1024)),
        "--=_boundary_42--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def base64_lines(data: bytes) -> str:
    """Return `data` in base64, 76 characters a line, lines joined by CRLF."""
    return base64.encodebytes(data).decode().rstrip("\n").replace("\n", "\r\n")


_TRACE_FIELD = re.compile(
    rb"(?:Return-Path|Received|Authentication-Results|Received-SPF|X-Spam-[\w-]+):"
    rb"[^\n]*\n(?:[ \t][^\n]*\n)*",
    re.I,
)


def strip_trace_headers(message: bytes) -> bytes:
    """Remove the fields the server added at the top of a message.

    These are the trace fields (Return-Path, Received) and the results of
    the inbound checks (Authentication-Results, Received-SPF, X-Spam-*).
    """
    position = 0
    while match := _TRACE_FIELD.match(message, position):
        position = match.end()
    return message[position:]


def to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def message_tag(message: bytes) -> str:
    match = re.search(rb"Message-ID: <([^@>]+)@client\.example\.test>", message)
    assert match is not None, f"no Message-ID in {message[:300]!r}"
    return match.group(1).decode()


def send_with_swaks(garrison: GarrisonProcess, message_file: Path) -> None:
    swaks = require_tool("swaks", "swaks")
    # swaks ends DATA with CRLF "." CRLF even after a final CRLF, which would
    # add an empty line, so it gets the message without its last CRLF.
    data = message_file.read_bytes()
    assert data.endswith(b"\r\n")
    trimmed_file = message_file.with_suffix(".swaks")
    trimmed_file.write_bytes(data[:-2])
    result = subprocess.run(
        [
            swaks,
            "--server",
            "127.0.0.1",
            "--port",
            str(garrison.port("smtp")),
            "--helo",
            "client.example.test",
            "--from",
            BOB,
            "--to",
            ALICE,
            "--data",
            f"@{trimmed_file}",
            "--suppress-data",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )
    assert result.returncode == 0, f"swaks failed:\n{result.stdout}\n{result.stderr}"
    assert re.search(r"<-\s+250 .*queued as", result.stdout), result.stdout


def send_with_smtp_source(garrison: GarrisonProcess, message_file: Path) -> None:
    smtp_source = require_tool("smtp-source", "postfix")
    # smtp-source -F sends each line of the file followed by CRLF, so the
    # file has LF line endings.
    lf_file = message_file.with_suffix(".lf")
    lf_file.write_bytes(to_lf(message_file.read_bytes()))
    result = subprocess.run(
        [
            smtp_source,
            "-m",
            "1",
            "-M",
            "client.example.test",
            "-f",
            BOB,
            "-t",
            ALICE,
            "-F",
            str(lf_file),
            f"127.0.0.1:{garrison.port('smtp')}",
        ],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"smtp-source failed:\n{result.stdout}\n{result.stderr}"
    )


def client_context(garrison: GarrisonProcess) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(garrison.ca_file))
    context.check_hostname = False
    return context


def connect_imaps(garrison: GarrisonProcess) -> imaplib.IMAP4_SSL:
    """Connect over implicit TLS; use as a context manager, which logs out."""
    return imaplib.IMAP4_SSL(
        "127.0.0.1",
        garrison.port("imaps"),
        ssl_context=client_context(garrison),
        timeout=CLIENT_TIMEOUT,
    )


def read_with_imaplib(garrison: GarrisonProcess) -> list[bytes]:
    with connect_imaps(garrison) as imap:
        imap.login(ALICE, PASSWORD)
        status, _ = imap.select("INBOX", readonly=True)
        assert status == "OK"
        status, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert status == "OK", data
    return [item[1] for item in data if isinstance(item, tuple)]


def count_with_imaplib(garrison: GarrisonProcess) -> int:
    with connect_imaps(garrison) as imap:
        imap.login(ALICE, PASSWORD)
        status, data = imap.select("INBOX", readonly=True)
        assert status == "OK"
    return int(data[0])


def read_with_poplib(garrison: GarrisonProcess) -> tuple[list[bytes], list[bytes]]:
    """Return the messages and their UIDL values; delete nothing."""
    pop = poplib.POP3_SSL(
        "127.0.0.1",
        garrison.port("pop3s"),
        context=client_context(garrison),
        timeout=CLIENT_TIMEOUT,
    )
    try:
        pop.user(ALICE)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        messages = []
        for number in range(1, count + 1):
            listed_size = int(pop.list(number).split()[2])
            _, lines, _ = pop.retr(number)
            data = b"".join(line + b"\r\n" for line in lines)
            assert len(data) == listed_size, f"LIST size of message {number} is wrong"
            messages.append(data)
        _, uidl_lines, _ = pop.uidl()
    finally:
        pop.quit()
    return messages, [line.split()[1] for line in uidl_lines]


def read_with_mbsync(garrison: GarrisonProcess, work: Path) -> list[bytes]:
    mbsync = require_tool("mbsync", "isync")
    maildir = work / "Maildir"
    maildir.mkdir()
    config = work / "mbsyncrc"
    config.write_text(
        # isync 1.4 matches only DNS names in the certificate, and the one
        # `garrison init` makes names localhost besides the host name.
        f"""IMAPAccount garrison
Host localhost
Port {garrison.port("imaps")}
User {ALICE}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {garrison.ca_file}

IMAPStore remote
Account garrison

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel inbox
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""
    )
    result = subprocess.run(
        [mbsync, "--config", str(config), "--all"],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env={**os.environ, "HOME": str(work)},
    )
    assert result.returncode == 0, f"mbsync failed:\n{result.stdout}\n{result.stderr}"
    files = sorted((maildir / "INBOX" / "new").iterdir()) + sorted(
        (maildir / "INBOX" / "cur").iterdir()
    )
    # isync 1.4 adds an X-TUID header field to every message it copies, so it
    # can find the copy again. The server did not send that field.
    return [
        re.sub(rb"^X-TUID: [^\n]*\n", b"", path.read_bytes(), count=1, flags=re.M)
        for path in files
    ]


def read_with_fetchmail(garrison: GarrisonProcess, work: Path) -> list[bytes]:
    """Fetch over POP3S with --nokeep, so the server deletes what it sent."""
    fetchmail = require_tool("fetchmail", "fetchmail")
    outbox = work / "fetched"
    outbox.mkdir()
    rcfile = work / "fetchmailrc"
    rcfile.write_text(
        f"poll 127.0.0.1 protocol POP3 port {garrison.port('pop3s')}\n"
        f'  user "{ALICE}" password "{PASSWORD}"\n'
        f"  ssl sslcertfile {garrison.ca_file} sslcertck sslcommonname {HOSTNAME}\n"
        f"  nokeep fetchall\n"
        f"""  mda "/bin/sh -c 'cat > {outbox}/$$'"\n"""
    )
    rcfile.chmod(0o600)
    result = subprocess.run(
        [
            fetchmail,
            "--fetchmailrc",
            str(rcfile),
            "--invisible",
            "--norewrite",
            "--nosyslog",
            "--idfile",
            str(work / "fetchids"),
        ],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env={**os.environ, "HOME": str(work), "FETCHMAILHOME": str(work)},
    )
    # Exit status 0 means messages were retrieved.
    assert result.returncode == 0, (
        f"fetchmail failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return [path.read_bytes() for path in sorted(outbox.iterdir())]


def by_tag(messages: list[bytes]) -> dict[str, bytes]:
    return {message_tag(message): strip_trace_headers(message) for message in messages}


def test_mime_message_round_trip(garrison_process: GarrisonProcess, tmp_path: Path):
    sent = {
        "swaks": build_message("swaks"),
        "smtp-source": build_message("smtp-source"),
    }
    for tag, data in sent.items():
        (tmp_path / f"{tag}.eml").write_bytes(data)
    send_with_swaks(garrison_process, tmp_path / "swaks.eml")
    send_with_smtp_source(garrison_process, tmp_path / "smtp-source.eml")
    # smtp-source (Postfix 3.7) sends CRLF "." CRLF after the last line of
    # the file, so the message on the wire ends with one more empty line.
    sent["smtp-source"] += b"\r\n"

    imap_copies = by_tag(read_with_imaplib(garrison_process))
    assert sorted(imap_copies) == sorted(sent)
    for tag, data in sent.items():
        assert imap_copies[tag] == data, f"IMAP copy of the {tag} message differs"

    pop_messages, uidls = read_with_poplib(garrison_process)
    pop_copies = by_tag(pop_messages)
    assert sorted(pop_copies) == sorted(sent)
    for tag, data in sent.items():
        assert pop_copies[tag] == data, f"POP3 copy of the {tag} message differs"
    assert len(set(uidls)) == 2

    mbsync_work = tmp_path / "mbsync"
    mbsync_work.mkdir()
    mbsync_copies = by_tag(read_with_mbsync(garrison_process, mbsync_work))
    assert sorted(mbsync_copies) == sorted(sent)
    for tag, data in sent.items():
        assert to_lf(mbsync_copies[tag]) == to_lf(data), (
            f"mbsync copy of the {tag} message differs"
        )

    fetchmail_work = tmp_path / "fetchmail"
    fetchmail_work.mkdir()
    fetchmail_copies = by_tag(read_with_fetchmail(garrison_process, fetchmail_work))
    assert sorted(fetchmail_copies) == sorted(sent)
    for tag, data in sent.items():
        assert to_lf(fetchmail_copies[tag]) == to_lf(data), (
            f"fetchmail copy of the {tag} message differs"
        )

    # fetchmail ran with --nokeep: its DELE and QUIT emptied the INBOX.
    assert count_with_imaplib(garrison_process) == 0


def test_received_header_names_the_server(garrison_process: GarrisonProcess, tmp_path):
    message_file = tmp_path / "one.eml"
    message_file.write_bytes(build_message("trace"))
    send_with_swaks(garrison_process, message_file)

    (message,) = read_with_imaplib(garrison_process)
    trace = message[: len(message) - len(strip_trace_headers(message))]
    assert b"Received:" in trace
    assert HOSTNAME.encode() in trace
