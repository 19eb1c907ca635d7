"""The SMTP client that delivers one message to one host (RFC 5321 client side).

`SMTPClient.connect(address, port)` opens a session: greeting, EHLO (HELO
when the server rejects EHLO), then opportunistic STARTTLS (RFC 3207) when
the server offers it, followed by a second EHLO. `SMTPClient.send(...)`
runs one mail transaction and returns one `Reply` per recipient:

- MAIL carries SIZE, BODY=8BITMIME, SMTPUTF8, RET and ENVID when the
  server offers the extension; RCPT carries NOTIFY and ORCPT under DSN.
- With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
  write; without it, one command per round trip.
- With CHUNKING (RFC 3030) the content goes as BDAT chunks, else as DATA
  with dot-stuffing. Both stream from the blob file in bounded memory.
- `on_accepted` is awaited as soon as the final reply to the content is
  in, before QUIT, so the caller can record the delivery at once.

Time-outs are those of RFC 5321 §4.5.3.2. A lost connection or a
time-out raises `SMTPClientError` with a temporary reply; replies are never
guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from garrison.smtp import extensions
from garrison.smtp.data import dot_stuff
from garrison.smtp.parser import encode_xtext
from garrison.smtp.replies import Reply
from garrison.smtp.response import ReplyReader, ReplySyntaxError, parse_ehlo_keywords

# RFC 5321 §4.5.3.2: minimum time-outs of an SMTP client, in seconds.
GREETING_TIMEOUT = 300.0  # §4.5.3.2.1: initial 220 message, 5 minutes
MAIL_TIMEOUT = 300.0  # §4.5.3.2.2: MAIL, 5 minutes
RCPT_TIMEOUT = 300.0  # §4.5.3.2.3: RCPT, 5 minutes
DATA_INIT_TIMEOUT = 120.0  # §4.5.3.2.4: DATA initiation, 2 minutes
DATA_BLOCK_TIMEOUT = 180.0  # §4.5.3.2.5: each data block, 3 minutes
DATA_END_TIMEOUT = 600.0  # §4.5.3.2.6: DATA termination, 10 minutes

CHUNK_SIZE = 1024 * 1024


class SMTPClientError(Exception):
    """The session failed before a reply settled the outcome; see `reply`."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.code} {reply.enhanced} {reply.text}".strip())
        self.reply = reply


def local_reply(code: int, enhanced: str, text: str) -> Reply:
    """Return a reply that Garrison made itself, not one a server sent."""
    return Reply(code, enhanced, text)


@dataclass(slots=True)
class MailRequest:
    """One transaction: envelope, DSN parameters and the content to send."""

    sender: str
    recipients: Sequence[str]
    size: int
    open_content: Callable[[], BinaryIO]
    eight_bit: bool = False
    smtputf8: bool = False
    envid: str | None = None
    ret: str | None = None
    notify: Sequence[str | None] = field(default_factory=list)
    orcpt: Sequence[str | None] = field(default_factory=list)


class SMTPClient:
    """One SMTP session with a remote server."""

    def __init__(
        self,
        hostname: str,
        tls_context: ssl.SSLContext | None,
        timeout_scale: float = 1.0,
    ) -> None:
        self.hostname = hostname
        self.tls_context = tls_context
        self.timeout_scale = timeout_scale
        self.extensions: dict[str, str] = {}
        self.tls = False
        self.server_name = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies = ReplyReader()
        self._pending: list[Reply] = []

    # -- connection ----------------------------------------------------------

    async def connect(
        self,
        address: str,
        port: int,
        connect_timeout: float,
        server_name: str = "",
        starttls: bool = True,
    ) -> None:
        """Connect, read the greeting, EHLO and STARTTLS; raise SMTPClientError."""
        self.server_name = server_name or address
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, limit=256 * 1024),
                connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise SMTPClientError(
                local_reply(451, "4.4.1", f"connect to {address}:{port} failed: {exc}")
            ) from exc

        greeting = await self._read_reply(GREETING_TIMEOUT)
        if greeting.code != 220:
            raise SMTPClientError(greeting)
        await self._hello()

        if (
            starttls
            and self.tls_context is not None
            and extensions.STARTTLS in self.extensions
        ):
            await self._starttls()

    async def _hello(self) -> None:
        reply = await self.command(f"EHLO {self.hostname}", MAIL_TIMEOUT)
        if reply.code == 250:
            self.extensions = parse_ehlo_keywords(reply)
            return
        # RFC 5321 §3.2: a server that rejects EHLO may still accept HELO.
        if reply.code >= 500:
            reply = await self.command(f"HELO {self.hostname}", MAIL_TIMEOUT)
            if reply.code == 250:
                self.extensions = {}
                return
        raise SMTPClientError(reply)

    async def _starttls(self) -> None:
        reply = await self.command("STARTTLS", MAIL_TIMEOUT)
        if reply.code != 220:
            # RFC 3207 §4: a client may go on without TLS after a refusal.
            return
        assert self._writer is not None and self.tls_context is not None
        try:
            await self._writer.start_tls(
                self.tls_context,
                server_hostname=self.server_name,
                ssl_handshake_timeout=self._timeout(MAIL_TIMEOUT),
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise SMTPClientError(
                local_reply(451, "4.7.5", f"TLS handshake failed: {exc}")
            ) from exc
        self.tls = True
        # RFC 3207 §4.2: the client discards what it knew and sends EHLO again.
        self.extensions = {}
        await self._hello()

    async def close(self) -> None:
        """Send QUIT when the session is usable, then close the connection."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            if not writer.is_closing():
                writer.write(b"QUIT\r\n")
                await asyncio.wait_for(writer.drain(), 5)
                await asyncio.wait_for(self._read_reply_raw(), 5)
        except (OSError, TimeoutError, SMTPClientError, ReplySyntaxError):
            pass
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 5)

    def abort(self) -> None:
        """Close the connection at once, without QUIT."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.transport.abort()

    # -- commands and replies ----------------------------------------------

    def _timeout(self, seconds: float) -> float:
        return seconds * self.timeout_scale

    async def command(self, line: str, timeout: float) -> Reply:
        """Send one command line and return its reply."""
        self._write(line.encode("utf-8") + b"\r\n")
        return await self._read_reply(timeout)

    def _write(self, data: bytes) -> None:
        if self._writer is None:
            raise SMTPClientError(local_reply(451, "4.4.2", "connection closed"))
        self._writer.write(data)

    async def _drain(self, timeout: float) -> None:
        assert self._writer is not None
        try:
            await asyncio.wait_for(self._writer.drain(), self._timeout(timeout))
        except (OSError, TimeoutError) as exc:
            raise SMTPClientError(
                local_reply(
                    451, "4.4.2", f"sending to {self.server_name} failed: {exc}"
                )
            ) from exc

    async def _read_reply(self, timeout: float) -> Reply:
        await self._drain(timeout)
        try:
            return await asyncio.wait_for(
                self._read_reply_raw(), self._timeout(timeout)
            )
        except TimeoutError as exc:
            raise SMTPClientError(
                local_reply(451, "4.4.2", f"{self.server_name} did not reply in time")
            ) from exc
        except ReplySyntaxError as exc:
            raise SMTPClientError(
                local_reply(
                    451, "4.5.0", f"invalid reply from {self.server_name}: {exc}"
                )
            ) from exc

    async def _read_reply_raw(self) -> Reply:
        assert self._reader is not None
        while not self._pending:
            try:
                data = await self._reader.read(65536)
            except OSError as exc:
                raise SMTPClientError(
                    local_reply(451, "4.4.2", f"connection lost: {exc}")
                ) from exc
            if not data:
                raise SMTPClientError(
                    local_reply(
                        451, "4.4.2", f"{self.server_name} closed the connection"
                    )
                )
            self._pending.extend(self._replies.feed(data))
        return self._pending.pop(0)

    # -- transaction ---------------------------------------------------------

    def _mail_command(self, request: MailRequest) -> str:
        params = []
        if extensions.SIZE in self.extensions:
            params.append(f"SIZE={request.size}")
        if request.eight_bit and extensions.EIGHTBITMIME in self.extensions:
            params.append("BODY=8BITMIME")
        if request.smtputf8:
            params.append("SMTPUTF8")
        if extensions.DSN in self.extensions:
            if request.ret:
                params.append(f"RET={request.ret}")
            if request.envid:
                params.append(f"ENVID={encode_xtext(request.envid)}")
        suffix = "".join(" " + param for param in params)
        return f"MAIL FROM:<{request.sender}>{suffix}"

    def _rcpt_command(self, request: MailRequest, index: int) -> str:
        params = []
        if extensions.DSN in self.extensions:
            notify = request.notify[index] if index < len(request.notify) else None
            orcpt = request.orcpt[index] if index < len(request.orcpt) else None
            if notify:
                params.append(f"NOTIFY={notify}")
            if orcpt:
                params.append(f"ORCPT={encode_xtext(orcpt)}")
        suffix = "".join(" " + param for param in params)
        return f"RCPT TO:<{request.recipients[index]}>{suffix}"

    def check_request(self, request: MailRequest) -> Reply | None:
        """Return the permanent failure that makes sending pointless, or None."""
        limit = self.extensions.get(extensions.SIZE, "")
        # RFC 1870 §6: a SIZE limit of 0 means no fixed maximum.
        if limit.isdigit() and int(limit) and request.size > int(limit):
            return local_reply(
                552, "5.3.4", f"message is larger than {self.server_name} accepts"
            )
        # RFC 6531 §3.2: without SMTPUTF8 at the server, the message cannot go.
        if request.smtputf8 and extensions.SMTPUTF8 not in self.extensions:
            return local_reply(
                553, "5.6.7", f"{self.server_name} does not support SMTPUTF8"
            )
        return None

    async def send(
        self,
        request: MailRequest,
        on_accepted: Callable[[list[int], Reply], Awaitable[None]],
    ) -> list[Reply]:
        """Run one transaction; return one reply per recipient, in order.

        A recipient's reply is its RCPT reply when that was negative, else
        the reply to the content. `on_accepted(indexes, reply)` is awaited
        right after a positive reply to the content.
        """
        problem = self.check_request(request)
        if problem is not None:
            return [problem] * len(request.recipients)

        chunking = extensions.CHUNKING in self.extensions
        pipelining = extensions.PIPELINING in self.extensions
        commands = [self._mail_command(request)]
        commands += [
            self._rcpt_command(request, i) for i in range(len(request.recipients))
        ]

        if pipelining:
            # RFC 2920 §3.1: DATA may end a group. BDAT waits for the RCPT
            # replies, so no content is sent when every recipient failed.
            group = commands + ([] if chunking else ["DATA"])
            self._write("".join(line + "\r\n" for line in group).encode("utf-8"))
            mail_reply = await self._read_reply(MAIL_TIMEOUT)
            rcpt_replies = [
                await self._read_reply(RCPT_TIMEOUT) for _ in request.recipients
            ]
            data_reply = None if chunking else await self._read_reply(DATA_INIT_TIMEOUT)
        else:
            mail_reply = await self.command(commands[0], MAIL_TIMEOUT)
            rcpt_replies = []
            if mail_reply.code == 250:
                for line in commands[1:]:
                    rcpt_replies.append(await self.command(line, RCPT_TIMEOUT))
            data_reply = None

        if mail_reply.code != 250:
            await self._reset_if_needed(data_reply)
            return [mail_reply] * len(request.recipients)

        accepted = [
            i for i, reply in enumerate(rcpt_replies) if reply.code in (250, 251)
        ]
        if not accepted:
            await self._reset_if_needed(data_reply)
            return rcpt_replies

        if chunking:
            final = await self._send_bdat(request)
        else:
            if data_reply is None:
                data_reply = await self.command("DATA", DATA_INIT_TIMEOUT)
            if data_reply.code != 354:
                final = data_reply
            else:
                final = await self._send_data(request)

        if final.code == 250:
            await on_accepted(accepted, final)
        results = list(rcpt_replies)
        for i in accepted:
            results[i] = final
        return results

    async def _reset_if_needed(self, data_reply: Reply | None) -> None:
        # A pipelined DATA that got 354 although no recipient was accepted
        # is ended with an empty message, because the server now expects
        # content. The server then rejects the transaction.
        if data_reply is not None and data_reply.code == 354:
            self._write(b".\r\n")
            await self._read_reply(DATA_END_TIMEOUT)

    async def _send_data(self, request: MailRequest) -> Reply:
        with request.open_content() as content:
            carry = b""
            while True:
                block = content.read(CHUNK_SIZE)
                if not block:
                    break
                block = carry + block
                # Cut after the last LF, so each piece starts at a line start
                # and dot-stuffing never misses a "." split across reads.
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    carry = block
                    continue
                piece, carry = block[:cut], block[cut:]
                self._write(_stuff_lines(piece))
                await self._drain(DATA_BLOCK_TIMEOUT)
            # dot_stuff adds the final CRLF when needed and the end line.
            self._write(dot_stuff(carry) if carry else b".\r\n")
        return await self._read_reply(DATA_END_TIMEOUT)

    async def _send_bdat(self, request: MailRequest) -> Reply:
        with request.open_content() as content:
            block = content.read(CHUNK_SIZE)
            while True:
                following = content.read(CHUNK_SIZE) if block else b""
                last = not following
                header = f"BDAT {len(block)}{' LAST' if last else ''}\r\n"
                self._write(header.encode("ascii") + block)
                timeout = DATA_END_TIMEOUT if last else DATA_BLOCK_TIMEOUT
                reply = await self._read_reply(timeout)
                if last or reply.code != 250:
                    return reply
                block = following


def _stuff_lines(lines: bytes) -> bytes:
    """Dot-stuff whole lines (RFC 5321 §4.5.2) without adding the end line."""
    if lines.startswith(b"."):
        lines = b"." + lines
    return lines.replace(b"\n.", b"\n..")
