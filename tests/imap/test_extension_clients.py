"""SORT, THREAD, QUOTA and LIST through IMAPClient, and COMPRESS through
Python's imaplib with a zlib layer added by the test."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import zlib

from imapclient import IMAPClient

from tests.imap.conftest import ALICE, PASSWORD, deliver


def _message(subject: str, date: str, extra: str = "") -> bytes:
    return (
        f"From: bob@example.test\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}\r\nx\r\n"
    ).encode()


def _imapclient_session(port: int, context: ssl.SSLContext) -> dict:
    result: dict = {}
    with IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=context) as client:
        client.login(ALICE, PASSWORD)
        client.select_folder("INBOX")
        result["sort"] = client.sort(["REVERSE", "DATE"])
        result["sort_subject"] = client.sort("SUBJECT")
        result["thread"] = client.thread("REFERENCES")
        result["quota_root"] = client.get_quota_root("INBOX")
        result["quota"] = client.get_quota("INBOX")
        result["list"] = client.list_folders(pattern="S*")
        client.logout()
    return result


async def test_imapclient_sort_thread_quota(imap_server):
    imap_server.directory.set_quota(ALICE, 1024 * 1024)
    await deliver(imap_server, ALICE, _message("Plan", "Mon, 1 Jan 2024 10:00:00 +0000", "Message-ID: <a@x>\r\n"))
    await deliver(imap_server, ALICE, _message("Re: Plan", "Tue, 2 Jan 2024 10:00:00 +0000", "Message-ID: <b@x>\r\nReferences: <a@x>\r\n"))
    await deliver(imap_server, ALICE, _message("Apples", "Wed, 3 Jan 2024 10:00:00 +0000"))
    result = await asyncio.to_thread(
        _imapclient_session, imap_server.port("imaps"), imap_server.tls_client_context()
    )
    assert result["sort"] == [3, 2, 1]
    assert result["sort_subject"] == [3, 1, 2]
    assert result["thread"] == ((1, 2), (3,))
    roots, quotas = result["quota_root"]
    assert roots.mailbox == "INBOX"
    assert roots.quota_roots == [""]
    assert len(quotas) == 1
    assert quotas[0].resource == "STORAGE"
    assert quotas[0].limit == 1024
    assert quotas[0].usage >= 1
    assert result["quota"] == quotas
    assert {name for _, _, name in result["list"]} == {"Sent"}


def _imaplib_compressed(port: int) -> list:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(ALICE, PASSWORD)
    # imaplib only sends commands it knows, valid in the given states.
    imaplib.Commands["COMPRESS"] = ("AUTH", "SELECTED")
    typ, _ = client._simple_command("COMPRESS", "DEFLATE")
    assert typ == "OK"
    # imaplib has no COMPRESS support: swap its socket file for a zlib pair.
    raw = client.sock
    inflater = zlib.decompressobj(-15)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    buffered = bytearray()

    def readline() -> bytes:
        while b"\n" not in buffered:
            buffered.extend(inflater.decompress(raw.recv(65536)))
        end = buffered.index(b"\n") + 1
        line = bytes(buffered[:end])
        del buffered[:end]
        return line

    def read(size: int) -> bytes:
        while len(buffered) < size:
            buffered.extend(inflater.decompress(raw.recv(65536)))
        data = bytes(buffered[:size])
        del buffered[:size]
        return data

    def send(data: bytes) -> None:
        raw.sendall(deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH))

    client.readline = readline
    client.read = read
    client.send = send
    client.select("INBOX")
    typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    client.logout()
    return data


async def test_imaplib_over_compress(imap_server):
    await deliver(imap_server, ALICE, _message("Squeezed", "Mon, 1 Jan 2024 10:00:00 +0000"))
    data = await asyncio.to_thread(_imaplib_compressed, imap_server.port("imap"))
    assert data[0][1] == b"Subject: Squeezed\r\n\r\n"
