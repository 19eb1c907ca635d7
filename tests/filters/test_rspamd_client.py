"""The rspamd HTTP client: requests to a private rspamd, and malformed replies.

The malformed replies come from a scripted HTTP server on 127.0.0.1,
because a working rspamd does not send them. The script plays a broken or
foreign peer on rspamd's port.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable

import pytest

from garrison.filters.rspamd import (
    MAX_RESPONSE_SIZE,
    RspamdClient,
    RspamdError,
    RspamdResult,
    parse_result,
    parse_url,
    spam_headers,
)
from tests.filters.rspamd_server import GTUBE, Rspamd

MESSAGE = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: Alice <alice@example.test>, Bob <bob@example.test>\r\n"
    b"Subject: lunch\r\n"
    b"\r\n"
    b"Noon?\r\n"
)
ENVELOPE = [
    ("IP", "192.0.2.10"),
    ("Helo", "mx.example.org"),
    ("From", "<sender@example.org>"),
    ("Rcpt", "<alice@example.test>"),
    ("Rcpt", "<bob@example.test>"),
    ("Queue-Id", "Q1"),
]
VALID_BODY = json.dumps(
    {
        "action": "no action",
        "score": 1.5,
        "required_score": 15.0,
        "symbols": {"RULE_A": {"name": "RULE_A", "score": 1.5}},
    }
).encode()


async def check(url: str, message: bytes = MESSAGE, timeout: float = 5) -> RspamdResult:
    client = RspamdClient(url, timeout)
    return await client.check(io.BytesIO(message), len(message), ENVELOPE)


async def test_real_rspamd_reads_envelope(shared_rspamd: Rspamd) -> None:
    result = await check(shared_rspamd.url)
    assert result.action == "no action"
    assert result.required_score == 15.0
    # Both Rcpt headers arrived, and they match the To field.
    assert "RCPT_COUNT_TWO" in result.symbols
    assert "TO_MATCH_ENVRCPT_ALL" in result.symbols


async def test_real_rspamd_rejects_gtube(shared_rspamd: Rspamd) -> None:
    result = await check(shared_rspamd.url, MESSAGE + GTUBE + b"\r\n")
    assert result.action == "reject"
    assert "GTUBE" in result.symbols


async def test_error_status_raises(shared_rspamd: Rspamd) -> None:
    # rspamd 3.4 replies 500 "invalid command" to a path it does not serve.
    with pytest.raises(RspamdError, match="HTTP status 500"):
        await check(shared_rspamd.url + "/prefix")


def test_parse_url() -> None:
    assert parse_url("http://127.0.0.1:11333") == ("127.0.0.1", 11333, "/checkv2")
    assert parse_url("http://[::1]:80/rspamd/") == ("::1", 80, "/rspamd/checkv2")
    with pytest.raises(ValueError, match="expected http://HOST:PORT"):
        parse_url("https://127.0.0.1:11333")
    with pytest.raises(ValueError, match="expected http://HOST:PORT"):
        parse_url("http://127.0.0.1")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"action": "explode", "score": 1, "required_score": 15}',
        b'{"action": "reject", "score": "high", "required_score": 15}',
        b'{"action": "reject", "score": NaN, "required_score": 15}',
        b'{"action": "reject", "score": 1, "required_score": 15, "symbols": []}',
        b'{"action": "reject", "score": 1}',
    ],
    ids=[
        "not JSON",
        "not an object",
        "unknown action",
        "score not a number",
        "score not finite",
        "symbols not an object",
        "required score missing",
    ],
)
def test_parse_result_rejects_invalid(body: bytes) -> None:
    with pytest.raises(RspamdError):
        parse_result(body)


def test_symbol_names_sanitized() -> None:
    body = b'{"action": "no action", "score": 0, "required_score": 15,'
    body += b' "symbols": {"BAD\\r\\nX-Injected: 1": {"score": 0.5}}}'
    result = parse_result(body)
    assert list(result.symbols) == ["BAD??X-Injected:?1"]
    for _name, value in spam_headers(result):
        assert "\r" not in value
        assert "\n" not in value


def test_spam_headers_for_spam() -> None:
    result = RspamdResult("add header", 7.25, 15.0, {"LOW": 0.25, "HIGH": 7.0})
    assert spam_headers(result) == [
        ("X-Spamd-Result", "default: True [7.25 / 15.00]; HIGH(7.00); LOW(0.25)"),
        ("X-Rspamd-Action", "add header"),
        ("X-Spam", "Yes"),
    ]


# -- a scripted HTTP peer ---------------------------------------------------

Responder = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Responder], object]]:
    """Start scripted HTTP servers on 127.0.0.1; return a function giving the URL."""
    servers: list[asyncio.Server] = []

    async def start(responder: Responder) -> str:
        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            try:
                await responder(reader, writer)  # type: ignore[misc]
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    try:
        yield start  # type: ignore[misc]
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def replying(*chunks: bytes) -> Responder:
    async def respond(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()

    return respond


async def test_request_head_and_body(peer) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def respond(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        seen.append(await read_request(reader))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(VALID_BODY)
            + VALID_BODY
        )

    url = await peer(respond)
    client = RspamdClient(url, 5, chunk_size=7)
    headers = [*ENVELOPE, ("Helo", "evil\r\nInjected: yes")]
    result = await client.check(io.BytesIO(MESSAGE), len(MESSAGE), headers)
    assert result.symbols == {"RULE_A": 1.5}

    [(head, body)] = seen
    assert body == MESSAGE
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /checkv2 HTTP/1.1"
    assert f"Content-Length: {len(MESSAGE)}".encode() in lines
    assert lines.count(b"Rcpt: <alice@example.test>") == 1
    assert lines.count(b"Rcpt: <bob@example.test>") == 1
    # Control characters are removed, so no header can be injected.
    assert b"Helo: evilInjected: yes" in lines
    assert not any(line.startswith(b"Injected") for line in lines)


async def test_chunked_reply_parsed(peer) -> None:
    half = len(VALID_BODY) // 2
    url = await peer(
        replying(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"%x;ext=1\r\n" % half + VALID_BODY[:half] + b"\r\n",
            b"%x\r\n" % (len(VALID_BODY) - half) + VALID_BODY[half:] + b"\r\n",
            b"0\r\nTrailer: x\r\n\r\n",
        )
    )
    result = await check(url)
    assert result.score == 1.5


async def test_reply_until_close_parsed(peer) -> None:
    url = await peer(replying(b"HTTP/1.0 200 OK\r\n\r\n" + VALID_BODY))
    result = await check(url)
    assert result.action == "no action"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"HTTP/1.1 500 Internal\r\nContent-Length: 4\r\n\r\noops", "HTTP status 500"),
        (b"SMTP 220 hello\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "invalid header line"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE_SIZE + 1),
            "Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            "closed the connection after 5 bytes",
        ),
        (
            b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (MAX_RESPONSE_SIZE + 10),
            "longer than",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: " + b"y" * 20_000 + b"\r\n\r\n",
            "header section or chunk line longer than",
        ),
        (b"", "closed the connection after 0 bytes"),
    ],
    ids=[
        "server error",
        "not HTTP",
        "header without colon",
        "Content-Length over the limit",
        "body shorter than Content-Length",
        "body to close over the limit",
        "chunk size not hex",
        "header section over the limit",
        "closed without reply",
    ],
)
async def test_malformed_reply_raises(peer, reply: bytes, error: str) -> None:
    url = await peer(replying(reply))
    with pytest.raises(RspamdError, match=error):
        await check(url)


async def test_silent_peer_times_out(peer) -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    url = await peer(never)
    with pytest.raises(RspamdError, match="timed out after 0.3 seconds"):
        await check(url, timeout=0.3)
