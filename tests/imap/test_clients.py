"""Real client libraries against the server: imaplib, IMAPClient, mbsync.

The server runs on the test's event loop, so the blocking clients run in a
worker thread.
"""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import subprocess
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.imap.conftest import ALICE, PASSWORD, deliver, make_message


def _imaplib_session(port: int, context, starttls: bool, implicit: bool) -> dict:
    if implicit:
        client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=10)
    else:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        if starttls:
            client.starttls(context)
    client.login(ALICE, PASSWORD)
    result: dict = {}
    typ, data = client.select("INBOX")
    result["exists"] = int(data[0])
    typ, data = client.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    result["fetch"] = data
    client.store("1", "+FLAGS", "(\\Seen)")
    typ, data = client.search(None, "SEEN")
    result["seen"] = data[0]
    message = make_message("from imaplib")
    typ, data = client.append("INBOX", "(\\Flagged)", None, message)
    result["append"] = (typ, data)
    typ, data = client.uid("COPY", "1", "Archive")
    result["copy"] = typ
    client.logout()
    return result


@pytest.mark.parametrize("mode", ["plain", "starttls", "imaps"])
async def test_imaplib(imap_server, mode):
    await deliver(imap_server, ALICE, make_message("first"))
    port = imap_server.port("imaps" if mode == "imaps" else "imap")
    result = await asyncio.to_thread(
        _imaplib_session,
        port,
        imap_server.tls_client_context(),
        mode == "starttls",
        mode == "imaps",
    )
    assert result["exists"] == 1
    header = result["fetch"][0][1]
    assert header == b"Subject: first\r\n\r\n"
    assert result["seen"] == b"1"
    assert result["append"][0] == "OK"
    assert b"APPENDUID" in result["append"][1][0]
    assert result["copy"] == "OK"


def _imapclient_session(port: int, context) -> dict:
    result: dict = {}
    with IMAPClient(
        "127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=10
    ) as client:
        client.login(ALICE, PASSWORD)
        result["folders"] = [name for _, _, name in client.list_folders()]
        client.create_folder("Reisen/Zürich")
        result["created"] = client.folder_exists("Reisen/Zürich")
        client.select_folder("INBOX")
        messages = client.search(["SUBJECT", "first"])
        result["search"] = messages
        data = client.fetch(
            messages, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY[]"]
        )
        result["fetch"] = data
        result["move"] = client.move(messages, "Reisen/Zürich")
        client.select_folder("Reisen/Zürich")
        client.idle()
        result["idle"] = client.idle_check(timeout=0.2)
        client.idle_done()
        client.logout()
    return result


async def test_imapclient(imap_server):
    await deliver(imap_server, ALICE, make_message("first", "hello\r\n"))
    result = await asyncio.to_thread(
        _imapclient_session, imap_server.port("imaps"), imap_server.tls_client_context()
    )
    assert "INBOX" in result["folders"]
    assert "Sent" in result["folders"]
    assert result["created"]
    assert result["search"] == [1]
    fetched = result["fetch"][1]
    assert fetched[b"ENVELOPE"].subject == b"first"
    assert fetched[b"BODY[]"].endswith(b"hello\r\n")
    assert fetched[b"RFC822.SIZE"] == len(fetched[b"BODY[]"])
    assert result["idle"] == []


@pytest.mark.skipif(
    shutil.which("mbsync") is None, reason="mbsync (Debian isync) is not installed"
)
async def test_mbsync_pulls_maildir(imap_server, tmp_path: Path):
    for index in range(5):
        await deliver(imap_server, ALICE, make_message(f"sync {index}"))
    maildir = tmp_path / "mail"
    maildir.mkdir()
    version = subprocess.run(
        ["mbsync", "--version"], capture_output=True, text=True
    ).stdout
    # isync 1.5 renamed SSLType to TLSType.
    tls_keyword = "SSLType" if version.startswith("isync 1.4") else "TLSType"
    # isync 1.4 checks only DNS names in the certificate, so connect as
    # "localhost" (a name in the test certificate), not 127.0.0.1.
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"IMAPAccount test\n"
        f"Host localhost\nPort {imap_server.port('imaps')}\n"
        f"User {ALICE}\nPass {PASSWORD}\n"
        f"{tls_keyword} IMAPS\nCertificateFile {imap_server.ca_file}\nSystemCertificates no\n\n"
        f"IMAPStore remote\nAccount test\n\n"
        f"MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\nSubFolders Verbatim\n\n"
        f"Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSyncState *\n"
    )
    process = await asyncio.create_subprocess_exec(
        "mbsync",
        "-c",
        str(config),
        "-a",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode(errors="replace")
    delivered = list((maildir / "INBOX" / "new").iterdir()) + list(
        (maildir / "INBOX" / "cur").iterdir()
    )
    assert len(delivered) == 5
    assert (maildir / "Sent").is_dir()
