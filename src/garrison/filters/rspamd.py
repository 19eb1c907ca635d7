"""Spam filtering with rspamd over its HTTP protocol.

`RspamdClient.check(source, size, headers)` POSTs one message to
`/checkv2` on an rspamd normal worker and returns the parsed `RspamdResult`
(action, score, required score, symbols). It raises `RspamdError` when
rspamd cannot be reached, does not reply within the timeout, or sends a
reply that is not a valid check result.

`RspamdCheck` is the `MessageCheck` that the inbound check chain runs. It
sends the SMTP envelope in the request headers rspamd reads (IP, Helo,
From, one Rcpt per recipient, Queue-Id, MTA-Name, optionally Password and
Settings-ID), and maps rspamd's action:

- "reject": 554 5.7.1, with a text that names no rule;
- "soft reject" and "greylist": 451 4.7.1, so the sender retries;
- "add header" and "rewrite subject": X-Spam: Yes, and the Junk mailbox
  of every recipient when `rspamd.junk` is set;
- "no action": delivered as it is.

Every checked message gets X-Spamd-Result and X-Rspamd-Action fields when
`rspamd.headers` is set, in the format of rspamd's milter_headers module,
and the incoming X-Spam, X-Spamd-Result and X-Rspamd-Action fields are
removed so a sender cannot forge them. The X-Spam-Flag, X-Spam-Score and
X-Spam-Status fields belong to the built-in anti-spam check. rspamd's
symbols and their scores go into the verdict. A failure takes the
`rspamd.on_error` action: 451 4.7.1 or delivery without a check.

The protocol, from rspamd's protocol documentation (rspamd 3.4): an
HTTP/1.0 or 1.1 request with the message as the body, and a JSON object in
reply with `action`, `score`, `required_score` and `symbols` (name to an
object with `score`). The message is streamed from the blob in chunks, and
the reply is read up to MAX_RESPONSE_SIZE, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from garrison.config.schema import RspamdSettings, Settings
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.observability.log import event
from garrison.smtp import replies
from garrison.store import MailStore

log = logging.getLogger("garrison.filters.rspamd")

CHUNK_SIZE = 64 * 1024
# rspamd 3.4 replies with a few kilobytes of JSON; a larger reply means the
# peer is not rspamd.
MAX_RESPONSE_SIZE = 1024 * 1024
MAX_RESPONSE_HEADER_SIZE = 16 * 1024
# Symbols beyond this many are left out of X-Spamd-Result, highest scores first.
MAX_HEADER_SYMBOLS = 50

ACTIONS = frozenset(
    {"reject", "soft reject", "greylist", "rewrite subject", "add header", "no action"}
)
SPAM_ACTIONS = frozenset({"add header", "rewrite subject"})
DEFER_ACTIONS = frozenset({"soft reject", "greylist"})
SPAM_HEADERS = frozenset({"x-spam", "x-spamd-result", "x-rspamd-action"})

_SYMBOL_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
# Characters that may not appear in an HTTP header value (RFC 9110 §5.5).
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class RspamdError(Exception):
    """rspamd could not be reached, timed out or sent an invalid reply."""


@dataclass(frozen=True, slots=True)
class RspamdResult:
    """rspamd's verdict on one message."""

    action: str
    score: float
    required_score: float
    # Symbol name to its score in the metric, in rspamd's order.
    symbols: dict[str, float] = field(default_factory=dict)

    @property
    def is_spam(self) -> bool:
        return self.action in SPAM_ACTIONS


def parse_url(url: str) -> tuple[str, int, str]:
    """Split an rspamd URL into (host, port, request path of /checkv2).

    Raises ValueError for a URL that is not http://HOST:PORT[/PREFIX].
    """
    rest = url.removeprefix("http://")
    authority, slash, prefix = rest.partition("/")
    host, _, port = authority.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if rest == url or not host or not port.isdigit():
        raise ValueError(f"invalid rspamd URL {url!r}: expected http://HOST:PORT")
    path = "/" + (prefix.strip("/") + "/" if prefix.strip("/") else "") + "checkv2"
    return host, int(port), path


def parse_result(body: bytes) -> RspamdResult:
    """Parse the JSON body of a /checkv2 reply; raise RspamdError if invalid."""
    try:
        reply = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RspamdError(f"rspamd replied with invalid JSON: {exc}") from None
    if not isinstance(reply, dict):
        raise RspamdError("rspamd replied with JSON that is not an object")
    action = reply.get("action")
    if action not in ACTIONS:
        raise RspamdError(f"rspamd replied with an unknown action {action!r}")
    symbols: dict[str, float] = {}
    raw_symbols = reply.get("symbols", {})
    if not isinstance(raw_symbols, dict):
        raise RspamdError("rspamd replied with symbols that are not an object")
    for name, symbol in raw_symbols.items():
        score = symbol.get("score", 0.0) if isinstance(symbol, dict) else None
        symbols[_SYMBOL_UNSAFE.sub("?", str(name))[:100]] = _number(score, "score")
    return RspamdResult(
        action=action,
        score=_number(reply.get("score"), "score"),
        required_score=_number(reply.get("required_score"), "required_score"),
        symbols=symbols,
    )


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RspamdError(f"rspamd replied with a {key} that is not a number")
    if not math.isfinite(value):
        raise RspamdError(f"rspamd replied with a {key} that is not finite")
    return float(value)


class RspamdClient:
    """Checks messages with one rspamd normal worker over HTTP/1.1 on TCP.

    Each check opens its own connection (`Connection: close`), so checks
    may run concurrently.
    """

    def __init__(self, url: str, timeout: float, chunk_size: int = CHUNK_SIZE) -> None:
        self.host, self.port, self.path = parse_url(url)
        self.timeout = timeout
        self.chunk_size = chunk_size

    async def check(
        self, source: BinaryIO, size: int, headers: Sequence[tuple[str, str]]
    ) -> RspamdResult:
        """Send `size` bytes of `source` with the request headers; parse the reply.

        Raises RspamdError on a connection failure, a timeout (`timeout`
        seconds in total, connecting included), an HTTP status other than
        200, an invalid reply, or when `source` cannot be read.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await self._check(source, size, headers)
        except TimeoutError:
            raise RspamdError(
                f"rspamd check timed out after {self.timeout:g} seconds"
            ) from None
        except asyncio.IncompleteReadError as exc:
            raise RspamdError(
                f"rspamd closed the connection after {len(exc.partial)} bytes "
                "of an incomplete reply"
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise RspamdError(
                "rspamd reply has a header section or chunk line longer than "
                f"{MAX_RESPONSE_HEADER_SIZE} bytes"
            ) from exc
        except OSError as exc:
            raise RspamdError(f"rspamd connection failed: {exc!r}") from exc

    async def _check(
        self, source: BinaryIO, size: int, headers: Sequence[tuple[str, str]]
    ) -> RspamdResult:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, limit=MAX_RESPONSE_HEADER_SIZE
        )
        try:
            writer.write(self._request_head(size, headers))
            await self._send_body(source, size, writer)
            status, response_headers = await _read_head(reader)
            body = await _read_body(reader, response_headers)
        finally:
            writer.close()
        if status != 200:
            text = body[:200].decode("utf-8", "replace")
            raise RspamdError(f"rspamd replied with HTTP status {status}: {text!r}")
        return parse_result(body)

    def _request_head(self, size: int, headers: Sequence[tuple[str, str]]) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {host}:{self.port}",
            "Connection: close",
            f"Content-Length: {size}",
        ]
        lines += [f"{name}: {_HEADER_UNSAFE.sub('', value)}" for name, value in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    async def _send_body(
        self, source: BinaryIO, size: int, writer: asyncio.StreamWriter
    ) -> None:
        remaining = size
        while remaining > 0:
            chunk = source.read(min(self.chunk_size, remaining))
            if not chunk:
                raise RspamdError(
                    f"message ended {remaining} bytes before its size of {size}"
                )
            remaining -= len(chunk)
            try:
                writer.write(chunk)
                await writer.drain()
            except (BrokenPipeError, ConnectionResetError):
                # rspamd may reply with an error and close before it has read
                # the whole body; that reply is read next.
                return


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Read the status line and header fields; return (status, lower-case fields)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status = rest[:3]
    if not version.startswith("HTTP/1.") or not status.isdigit():
        raise RspamdError(f"rspamd replied with an invalid status line {lines[0]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise RspamdError(f"rspamd replied with an invalid header line {line!r}")
        fields[name.strip().lower()] = value.strip()
    return int(status), fields


async def _read_body(reader: asyncio.StreamReader, fields: dict[str, str]) -> bytes:
    """Read a body of Content-Length, chunked or to-close framing, bounded in size."""
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return await _read_chunked(reader)
    length = fields.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > MAX_RESPONSE_SIZE:
            raise RspamdError(f"rspamd replied with Content-Length {length!r}")
        return await reader.readexactly(int(length))
    body = await reader.read(MAX_RESPONSE_SIZE + 1)
    while len(body) <= MAX_RESPONSE_SIZE:
        more = await reader.read(MAX_RESPONSE_SIZE + 1 - len(body))
        if not more:
            return body
        body += more
    raise RspamdError(f"rspamd reply is longer than {MAX_RESPONSE_SIZE} bytes")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    # RFC 9112 §7.1: chunk-size in hex, optional extensions, CRLF, data, CRLF;
    # a zero-size chunk and the trailer section end the body.
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            chunk_size = int(size_text, 16)
        except ValueError:
            raise RspamdError(
                f"rspamd replied with an invalid chunk size {size_text!r}"
            ) from None
        if chunk_size == 0:
            break
        if len(body) + chunk_size > MAX_RESPONSE_SIZE:
            raise RspamdError(f"rspamd reply is longer than {MAX_RESPONSE_SIZE} bytes")
        body += await reader.readexactly(chunk_size)
        if await reader.readexactly(2) != b"\r\n":
            raise RspamdError("rspamd replied with a chunk not followed by CRLF")
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass
    return bytes(body)


class RspamdCheck:
    """The inbound check that requests rspamd's verdict on each message."""

    name = "rspamd"

    def __init__(
        self, settings: RspamdSettings, store: MailStore, mta_name: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.mta_name = mta_name
        self.client = RspamdClient(settings.url, settings.timeout)

    async def check(
        self, message: InboundMessage, verdict: Verdict
    ) -> CheckResult | None:
        """Return rspamd's verdict as a CheckResult.

        A message above `max_size` is not checked (None). A failure of rspamd
        or of reading the blob does not raise but takes the `on_error` action.
        """
        started = time.monotonic()
        size = message.blob.size
        if size > self.settings.max_size:
            event(
                log,
                "rspamd",
                queue_id=message.queue_id,
                action="skipped",
                size=size,
                max_size=self.settings.max_size,
            )
            return None
        try:
            with self.store.blobs.open_ref(message.blob) as source:
                result = await self.client.check(
                    source, size, self.request_headers(message)
                )
        except (RspamdError, OSError) as exc:
            return self._on_error(message, started, exc)

        event(
            log,
            "rspamd",
            queue_id=message.queue_id,
            action=result.action,
            score=round(result.score, 2),
            required=round(result.required_score, 2),
            symbols=len(result.symbols),
            duration_ms=_elapsed_ms(started),
        )
        return self.result_for(result)

    def request_headers(self, message: InboundMessage) -> list[tuple[str, str]]:
        """Return the rspamd request headers that carry the SMTP envelope."""
        envelope = message.envelope
        headers = [
            ("Queue-Id", envelope.queue_id),
            # "<>" is the null reverse-path of a bounce; rspamd 3.4 then does
            # not compare the envelope sender with the From field.
            ("From", f"<{envelope.mail_from}>"),
            ("MTA-Name", self.mta_name),
        ]
        if envelope.client_ip:
            headers.append(("IP", envelope.client_ip))
        if envelope.helo:
            headers.append(("Helo", envelope.helo))
        # NOTE: no Hostname header (the client's reverse DNS name), because
        # the SMTP session does not resolve it, so rspamd rules that read
        # the client's host name see none.
        headers += [("Rcpt", f"<{rcpt.address}>") for rcpt in envelope.recipients]
        if self.settings.password:
            headers.append(("Password", self.settings.password))
        if self.settings.settings_id:
            headers.append(("Settings-ID", self.settings.settings_id))
        return headers

    def result_for(self, result: RspamdResult) -> CheckResult:
        """Map rspamd's action, score and symbols to a CheckResult."""
        check_result = CheckResult(
            self.name,
            symbols=dict(result.symbols),
            details={
                "action": result.action,
                "score": result.score,
                "required_score": result.required_score,
            },
        )
        if result.action == "reject":
            check_result.reject = replies.SPAM_FILTER_REJECTED
        elif result.action in DEFER_ACTIONS:
            check_result.reject = replies.SPAM_FILTER_DEFERRED
        elif result.is_spam:
            check_result.junk = self.settings.junk
        if self.settings.headers:
            check_result.headers = spam_headers(result)
            check_result.strip_headers = set(SPAM_HEADERS)
        return check_result

    def _on_error(
        self, message: InboundMessage, started: float, exc: Exception
    ) -> CheckResult | None:
        action = self.settings.on_error
        event(
            log,
            "rspamd",
            logging.ERROR,
            queue_id=message.queue_id,
            action=action,
            duration_ms=_elapsed_ms(started),
            error=exc,
        )
        if action == "accept":
            return None
        return CheckResult(self.name, reject=replies.SPAM_FILTER_FAILED)


def spam_headers(result: RspamdResult) -> list[tuple[str, str]]:
    """Return X-Spamd-Result, X-Rspamd-Action and, for spam, X-Spam: Yes.

    X-Spamd-Result reads `default: False [0.10 / 15.00]; RULE(0.10); ...`:
    the spam flag, score and required score, then the symbols with their
    scores, highest first. `format_field` folds it before each "; ".
    """
    flag = "True" if result.is_spam else "False"
    parts = [f"default: {flag} [{result.score:.2f} / {result.required_score:.2f}]"]
    ranked = sorted(result.symbols.items(), key=lambda item: (-item[1], item[0]))
    parts += [f"{name}({score:.2f})" for name, score in ranked[:MAX_HEADER_SYMBOLS]]
    if len(ranked) > MAX_HEADER_SYMBOLS:
        parts.append(f"and {len(ranked) - MAX_HEADER_SYMBOLS} more")
    headers = [
        ("X-Spamd-Result", "; ".join(parts)),
        ("X-Rspamd-Action", result.action),
    ]
    if result.is_spam:
        headers.append(("X-Spam", "Yes"))
    return headers


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def check_from_settings(settings: Settings, store: MailStore) -> RspamdCheck | None:
    """Return the rspamd check when `rspamd.enabled` is set, else None."""
    if not settings.rspamd.enabled:
        return None
    return RspamdCheck(settings.rspamd, store, settings.server.hostname)
