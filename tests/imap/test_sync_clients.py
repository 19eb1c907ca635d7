"""Real synchronising clients: mbsync two-way, offlineimap, IMAPClient with QRESYNC.

The blocking clients run in worker threads or subprocesses while the server
runs on the test's event loop. mbsync (Debian isync) and offlineimap
(Debian offlineimap3) are installed by scripts/install-test-deps.sh; a
missing one skips the test, and fails it under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.imap.conftest import ALICE, PASSWORD, deliver, make_message


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is not None:
        return path
    message = f"{program} not found: install the Debian package {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _server_view(server, mailbox: str) -> dict[str, frozenset[str]]:
    """Return Subject -> flags of every message in one of alice's mailboxes."""
    account = server.directory.get_account(ALICE)
    box = server.store.get_mailbox(account.id, mailbox)
    view = {}
    for record in server.store.messages(box.id):
        view[server.store.message_meta(record.blob_id).subject] = record.flags
    return view


def _maildir_view(folder: Path) -> dict[str, str]:
    """Return Subject -> Maildir info flags ("S", "FS", ...) of a Maildir folder."""
    view = {}
    for sub in ("new", "cur"):
        directory = folder / sub
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            headers = BytesHeaderParser().parsebytes(path.read_bytes())
            flags = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            view[str(headers["Subject"])] = flags
    return view


def _find(folder: Path, subject: str) -> Path:
    for sub in ("new", "cur"):
        for path in (folder / sub).iterdir():
            if BytesHeaderParser().parsebytes(path.read_bytes())["Subject"] == subject:
                return path
    raise AssertionError(f"no message {subject!r} in {folder}")


async def _run(*command: str, timeout: float = 60) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, output.decode(errors="replace")


async def _imap_changes(server, port: int, context) -> None:
    """Flag D, move E to Archive and delete F on the server."""

    def work() -> None:
        with IMAPClient(
            "127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=10
        ) as client:
            client.login(ALICE, PASSWORD)
            client.select_folder("INBOX")
            by_subject = {
                data[b"ENVELOPE"].subject.decode(): uid
                for uid, data in client.fetch(client.search("ALL"), ["ENVELOPE"]).items()
            }
            client.add_flags([by_subject["D"]], [b"\\Flagged"])
            client.move([by_subject["E"]], "Archive")
            client.delete_messages([by_subject["F"]])
            client.expunge()
            client.logout()

    await asyncio.to_thread(work)


async def test_mbsync_two_way(imap_server, tmp_path: Path):
    mbsync = _require("mbsync", "isync")
    for subject in "ABCDEF":
        await deliver(imap_server, ALICE, make_message(subject, f"body {subject}\r\n"))
    maildir = tmp_path / "mail"
    maildir.mkdir()
    version = subprocess.run([mbsync, "--version"], capture_output=True, text=True).stdout
    # isync 1.5 renamed SSLType to TLSType.
    tls_keyword = "SSLType" if version.startswith("isync 1.4") else "TLSType"
    config = tmp_path / "mbsyncrc"
    # isync 1.4 checks only DNS names in the certificate, so connect as
    # "localhost", a name in the test certificate.
    config.write_text(
        f"IMAPAccount test\nHost localhost\nPort {imap_server.port('imaps')}\n"
        f"User {ALICE}\nPass {PASSWORD}\n{tls_keyword} IMAPS\n"
        f"CertificateFile {imap_server.ca_file}\nSystemCertificates no\n\n"
        f"IMAPStore remote\nAccount test\n\n"
        f"MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\n"
        f"SubFolders Verbatim\n\n"
        f"Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX Archive\n"
        f"Create Both\nExpunge Both\nSync All\nSyncState *\n"
    )
    await _run(mbsync, "-c", str(config), "-a")
    assert set(_maildir_view(maildir / "INBOX")) == set("ABCDEF")

    # Local changes: A read, B deleted, C moved to Archive.
    path = _find(maildir / "INBOX", "A")
    path.rename(maildir / "INBOX" / "cur" / (path.name.split(":2,")[0] + ":2,S"))
    _find(maildir / "INBOX", "B").unlink()
    moved = _find(maildir / "INBOX", "C")
    moved.rename(maildir / "Archive" / "new" / moved.name.split(",U=")[0])
    # Server changes: D flagged, E moved to Archive, F deleted.
    await _imap_changes(
        imap_server, imap_server.port("imaps"), imap_server.tls_client_context()
    )

    await _run(mbsync, "-c", str(config), "-a")
    inbox = _server_view(imap_server, "INBOX")
    assert set(inbox) == {"A", "D"}
    assert "\\Seen" in inbox["A"]
    assert "\\Flagged" in inbox["D"]
    assert set(_server_view(imap_server, "Archive")) == {"C", "E"}
    local = _maildir_view(maildir / "INBOX")
    assert set(local) == {"A", "D"}
    assert "S" in local["A"]
    assert "F" in local["D"]
    assert set(_maildir_view(maildir / "Archive")) == {"C", "E"}


async def test_offlineimap_two_way(imap_server, tmp_path: Path):
    offlineimap = _require("offlineimap", "offlineimap3")
    for subject in ("one", "two", "three"):
        await deliver(imap_server, ALICE, make_message(subject, f"body {subject}\r\n"))
    mail = tmp_path / "mail"
    config = tmp_path / "offlineimaprc"
    config.write_text(
        f"[general]\naccounts = test\nmetadata = {tmp_path}/meta\n\n"
        f"[Account test]\nlocalrepository = local\nremoterepository = remote\n\n"
        f"[Repository local]\ntype = Maildir\nlocalfolders = {mail}\n\n"
        f"[Repository remote]\ntype = IMAP\nremotehost = localhost\n"
        f"remoteport = {imap_server.port('imaps')}\nremoteuser = {ALICE}\n"
        f"remotepass = {PASSWORD}\nssl = yes\n"
        f"sslcacertfile = {imap_server.ca_file}\n"
        f"folderfilter = lambda name: name in ['INBOX', 'Archive']\n"
    )
    command = (offlineimap, "-c", str(config), "-o", "-u", "quiet")
    await _run(*command)
    assert set(_maildir_view(mail / "INBOX")) == {"one", "two", "three"}

    # Local: "one" read, "two" deleted; server: "three" flagged, a new one.
    path = _find(mail / "INBOX", "one")
    target = path.name.split(":2,")[0] + ":2,S"
    path.rename(mail / "INBOX" / "cur" / target)
    _find(mail / "INBOX", "two").unlink()
    account = imap_server.directory.get_account(ALICE)
    inbox_id = imap_server.store.get_mailbox(account.id, "INBOX").id
    uid_three = next(
        record.uid
        for record in imap_server.store.messages(inbox_id)
        if imap_server.store.message_meta(record.blob_id).subject == "three"
    )
    await imap_server.store.store_flags(inbox_id, [uid_three], "add", ["\\Flagged"])
    await deliver(imap_server, ALICE, make_message("four", "body four\r\n"))

    await _run(*command)
    server = _server_view(imap_server, "INBOX")
    assert set(server) == {"one", "three", "four"}
    assert "\\Seen" in server["one"]
    local = _maildir_view(mail / "INBOX")
    assert set(local) == {"one", "three", "four"}
    assert "F" in local["three"]


def _qresync_resync(port: int, context) -> dict:
    """Sync once, let a second session change the mailbox, then resync."""
    result: dict = {}
    with IMAPClient(
        "127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=10
    ) as first:
        first.login(ALICE, PASSWORD)
        first.enable("QRESYNC")
        selected = first.select_folder("INBOX")
        uidvalidity = selected[b"UIDVALIDITY"]
        highest = selected[b"HIGHESTMODSEQ"]
        known = first.fetch(first.search("ALL"), ["UID", "FLAGS", "MODSEQ"])
        result["known"] = sorted(known)
        first.logout()

    with IMAPClient(
        "127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=10
    ) as second:
        second.login(ALICE, PASSWORD)
        second.select_folder("INBOX")
        second.add_flags([2], [b"\\Answered"])
        second.delete_messages([1, 3])
        second.expunge()
        second.logout()

    with IMAPClient(
        "127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=10
    ) as again:
        again.login(ALICE, PASSWORD)
        result["enabled"] = again.enable("QRESYNC")
        again.select_folder("INBOX")
        changed = again.fetch(
            again.search("ALL"), ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"]
        )
        result["changed"] = {uid: data[b"FLAGS"] for uid, data in changed.items()}
        typ, data = again._imap._simple_command(
            "SELECT", f"INBOX (QRESYNC ({uidvalidity} {highest} 1:4))"
        )
        result["select"] = typ
        result["vanished"] = again._imap.untagged_responses.get("VANISHED")
        result["modseq_search"] = again.search(["MODSEQ", str(highest + 1)])
        again.logout()
    return result


async def test_imapclient_qresync_resync(imap_server):
    for index in range(4):
        await deliver(imap_server, ALICE, make_message(f"resync {index}"))
    result = await asyncio.to_thread(
        _qresync_resync, imap_server.port("imaps"), imap_server.tls_client_context()
    )
    assert result["known"] == [1, 2, 3, 4]
    assert result["enabled"] == [b"QRESYNC"]
    assert result["changed"] == {2: (b"\\Answered",)}
    assert result["select"] == "OK"
    assert result["vanished"] == [b"(EARLIER) 1,3"]
    assert result["modseq_search"] == [2]
