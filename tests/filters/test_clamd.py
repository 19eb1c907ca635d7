"""The clamd INSTREAM client against a real private clamd."""

from __future__ import annotations

import asyncio
import io
import tempfile
from pathlib import Path

import pytest

from garrison.filters.clamd import (
    ClamdClient,
    ClamdError,
    ScanResult,
    parse_address,
    parse_reply,
)
from tests.filters.conftest import EICAR, EICAR_SIGNATURE


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"stream: OK\0", ScanResult()),
        (b"stream: Win.Test.EICAR_HDB-1 FOUND\0", ScanResult("Win.Test.EICAR_HDB-1")),
        (b"stream: Bad\r\nName FOUND\0", ScanResult("Bad??Name")),
    ],
    ids=["clean", "infected", "unsafe characters replaced"],
)
def test_parse_reply_verdicts(reply: bytes, expected: ScanResult) -> None:
    assert parse_reply(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        b"INSTREAM size limit exceeded. ERROR\0",
        b"stream: Can't allocate memory ERROR\0",
        b"stream:  FOUND\0",
        b"UNKNOWN COMMAND\0",
    ],
)
def test_parse_reply_errors(reply: bytes) -> None:
    with pytest.raises(ClamdError):
        parse_reply(reply)


def test_parse_address_forms() -> None:
    assert parse_address("/run/clamav/clamd.ctl") == "/run/clamav/clamd.ctl"
    assert parse_address("127.0.0.1:3310") == ("127.0.0.1", 3310)
    assert parse_address("[::1]:3310") == ("::1", 3310)
    with pytest.raises(ValueError, match="invalid clamd address"):
        parse_address("clamd")


async def test_clean_stream(clamd) -> None:
    client = ClamdClient(clamd.address, timeout=10)
    result = await client.scan(io.BytesIO(b"Subject: hello\r\n\r\nclean\r\n"))
    assert not result.infected
    assert result.signature == ""


async def test_eicar_found_over_unix_socket(clamd) -> None:
    client = ClamdClient(clamd.address, timeout=10)
    result = await client.scan(io.BytesIO(EICAR))
    assert result.infected
    assert result.signature == EICAR_SIGNATURE


async def test_eicar_found_over_tcp(start_clamd) -> None:
    server = start_clamd(tcp=True)
    assert server.address.startswith("127.0.0.1:")
    client = ClamdClient(server.address, timeout=10)
    result = await client.scan(io.BytesIO(EICAR))
    assert result.signature == EICAR_SIGNATURE


async def test_eicar_split_over_many_chunks(clamd) -> None:
    # 7-byte chunks: clamd must reassemble the stream to match the hash.
    client = ClamdClient(clamd.address, timeout=10, chunk_size=7)
    result = await client.scan(io.BytesIO(EICAR))
    assert result.signature == EICAR_SIGNATURE


async def test_scan_reads_from_current_position(clamd) -> None:
    source = io.BytesIO(b"ignored prefix" + EICAR)
    source.seek(len(b"ignored prefix"))
    client = ClamdClient(clamd.address, timeout=10)
    assert (await client.scan(source)).signature == EICAR_SIGNATURE


async def test_stream_over_size_limit_is_error(start_clamd) -> None:
    server = start_clamd(stream_max_length="1M")
    client = ClamdClient(server.address, timeout=20)
    with pytest.raises(ClamdError, match="size limit exceeded"):
        await client.scan(io.BytesIO(b"x" * (3 * 1024 * 1024)))


async def test_ping(clamd) -> None:
    assert await ClamdClient(clamd.address, timeout=5).ping()
    clamd.stop()
    assert not await ClamdClient(clamd.address, timeout=5).ping()


async def test_missing_socket_is_error() -> None:
    with tempfile.TemporaryDirectory(prefix="clamd-") as directory:
        client = ClamdClient(str(Path(directory) / "absent.sock"), timeout=5)
        with pytest.raises(ClamdError, match="connection failed"):
            await client.scan(io.BytesIO(EICAR))


async def test_stopped_tcp_clamd_is_error(start_clamd) -> None:
    server = start_clamd(tcp=True)
    server.stop()
    client = ClamdClient(server.address, timeout=5)
    with pytest.raises(ClamdError, match="connection failed"):
        await client.scan(io.BytesIO(EICAR))


async def test_silent_peer_times_out() -> None:
    # clamd cannot be made to hang on purpose, so a socket that reads the
    # stream and never replies stands in for a stuck clamd.
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await reader.read()
        writer.close()

    with tempfile.TemporaryDirectory(prefix="clamd-") as directory:
        path = str(Path(directory) / "silent.sock")
        server = await asyncio.start_unix_server(swallow, path)
        try:
            client = ClamdClient(path, timeout=0.5)
            with pytest.raises(ClamdError, match="timed out after 0.5 seconds"):
                await client.scan(io.BytesIO(EICAR))
        finally:
            server.close()
            await server.wait_closed()
