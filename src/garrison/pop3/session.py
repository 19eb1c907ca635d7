"""One POP3 connection: the read loop, the dispatcher and the session state.

`Session.run` sends the greeting, then reads one command line at a time,
parses it, looks it up in `garrison.pop3.commands.COMMANDS` and runs its
handler if the table allows it in the current state. Replies are written in
order, so pipelined commands (RFC 2449 §6.6) need nothing special.

Limits a client cannot exceed: 255-octet command lines (RFC 2449 §4), the
autologout timer (RFC 1939 §3), `MAX_ERRORS` failed commands and
`authorization.MAX_AUTH_FAILURES` failed logins per session. Leaving the
session in any way other than QUIT in the TRANSACTION state changes nothing
in the store (RFC 1939 §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from garrison.net.streams import discard_buffered
from garrison.net.tls import is_loopback
from garrison.observability.log import event, format_event
from garrison.pop3 import replies
from garrison.pop3.commands import COMMANDS, check_arguments
from garrison.pop3.errors import LineTooLong, POP3Error, SessionAborted
from garrison.pop3.parser import (
    MAX_COMMAND_LINE,
    CommandSyntaxError,
    parse_command,
)
from garrison.pop3.state import State

if TYPE_CHECKING:
    from garrison.directory import Account
    from garrison.pop3.maildrop import Maildrop
    from garrison.pop3.server import POP3Server

logger = logging.getLogger("garrison.pop3")

# Failed commands in one session before it is closed.
MAX_ERRORS = 20
# Seconds a TLS handshake after STLS may take.
TLS_HANDSHAKE_TIMEOUT = 30.0


@dataclass
class SessionCounters:
    """Per-session counts, written to the disconnect log line."""

    commands: int = 0
    errors: int = 0
    auth_failures: int = 0
    retr: int = 0
    top: int = 0
    dele: int = 0
    bytes_sent: int = 0


class Session:
    """State and I/O of one POP3 connection.

    Handlers read and change `state`, `account`, `maildrop`, `pending_user`
    and `closed`, and write replies with `send`, `send_multiline` and
    `write`. The `server` gives access to settings, directory and store.
    """

    def __init__(
        self,
        server: POP3Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.id = secrets.token_hex(4)
        self.state = State.AUTHORIZATION
        self.account: Account | None = None
        self.maildrop: Maildrop | None = None
        self.pending_user: str | None = None
        self.closed = False
        # Why the session closed itself, for the disconnect log line.
        self.close_reason: str | None = None
        self.counters = SessionCounters()

        peer = writer.get_extra_info("peername")
        self.peer_ip = peer[0] if isinstance(peer, tuple) else ""
        self.peer_is_loopback = is_loopback(self.peer_ip)

        # True while the session waits for the client; shutdown may then close
        # the connection at once, as no command is half done.
        self.waiting_for_input = False
        self._started = time.monotonic()

    # -- TLS and authentication policy ---------------------------------

    @property
    def tls_active(self) -> bool:
        """Whether the connection is encrypted (implicit TLS or after STLS)."""
        return self.writer.get_extra_info("ssl_object") is not None

    @property
    def stls_available(self) -> bool:
        """Whether STLS may be used now (RFC 2595 §4: AUTHORIZATION only)."""
        return (
            self.server.listener.tls == "starttls"
            and self.server.tls_context is not None
            and not self.tls_active
            and self.state is State.AUTHORIZATION
        )

    def require_plaintext_auth_allowed(self) -> None:
        """Raise POP3Error unless a password may be sent on this connection.

        Passwords travel in the clear over USER/PASS and AUTH PLAIN, so they
        need TLS, except from a loopback address when the settings allow it.
        RFC 3206 §5 lists an attempt "in violation of policy" under [AUTH].
        """
        if self.tls_active:
            return
        settings = self.server.settings.tls
        if self.peer_is_loopback and settings.allow_plaintext_auth_from_loopback:
            return
        raise POP3Error(replies.PLAINTEXT_DISALLOWED)

    # -- Output ----------------------------------------------------------

    def send(self, line: str) -> None:
        """Queue one reply line; CRLF is added."""
        self.write(line.encode("utf-8") + b"\r\n")

    def send_multiline(self, first: str, lines: list[str]) -> None:
        """Queue a multi-line reply: status line, byte-stuffed lines, ".".

        RFC 1939 §3: a line starting with "." is sent with one more ".".
        """
        parts = [first]
        for line in lines:
            parts.append("." + line if line.startswith(".") else line)
        parts.append(".")
        self.write(("\r\n".join(parts) + "\r\n").encode("utf-8"))

    def write(self, data: bytes) -> None:
        """Queue raw bytes for the client."""
        self.writer.write(data)
        self.counters.bytes_sent += len(data)

    # -- Input -----------------------------------------------------------

    async def read_line(self, limit: int) -> bytes | None:
        """Read one line, including its ending, of at most `limit` octets.

        Returns None when the client closed the connection, or when the
        autologout timer expired (RFC 1939 §3), after telling the client.
        Raises LineTooLong when the line exceeds `limit`; `consumed` is false
        when even the stream buffer filled up without a line ending.
        """
        self.waiting_for_input = True
        try:
            async with asyncio.timeout(self.server.settings.pop3.autologout):
                line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise LineTooLong(consumed=False) from None
        except TimeoutError:
            if not self.closed:
                self.send(replies.AUTOLOGOUT)
                self.closed = True
                self.close_reason = "autologout timer expired"
            return None
        finally:
            self.waiting_for_input = False

        if len(line) > limit:
            raise LineTooLong(consumed=True)
        return line

    async def start_tls(self) -> None:
        """Upgrade the connection to TLS after the STLS reply was sent.

        Raises SessionAborted when the handshake fails, since nothing can be
        sent to the client afterwards.
        """
        context = self.server.tls_context
        assert context is not None, "STLS is offered only with a TLS context"
        await self.writer.drain()

        # Bytes that arrived after STLS but before the handshake were sent in
        # the clear and may have been injected by a man in the middle (the
        # STARTTLS command injection of CVE-2011-0411), so they are dropped.
        # Nothing can arrive in between: start_tls stops reading the socket
        # before its first real suspension, and the drain it starts with
        # returns at once after the drain above.
        dropped = discard_buffered(self.reader)

        try:
            await self.writer.start_tls(
                context,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
            )
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as error:
            event(logger, "starttls", session=self.id, result="failed", error=error)
            raise SessionAborted("TLS handshake failed") from None

        # Nothing the client sent in the clear carries over, such as a USER.
        self.pending_user = None
        event(logger, "starttls", session=self.id, result="ok", dropped=dropped)

    # -- The read loop -----------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until QUIT, an error, the timer or shutdown."""
        event(
            logger,
            "connect",
            session=self.id,
            ip=self.peer_ip,
            listener=self.server.listener.name,
            tls=self.tls_active,
        )
        reason = "client closed the connection"
        try:
            self.send(replies.GREETING.format(hostname=self.server.hostname))
            await self.writer.drain()
            reason = await self._serve()
        except SessionAborted as error:
            reason = error.reason
        except (ConnectionError, ssl.SSLError) as error:
            reason = f"connection error: {error}"
        finally:
            await self._close()
            self._log_disconnect(reason)

    async def _serve(self) -> str:
        while not self.closed:
            if self.server.closing:
                self.send(replies.SHUTTING_DOWN)
                return "server shutting down"

            try:
                line = await self.read_line(MAX_COMMAND_LINE)
            except LineTooLong as error:
                self.fail(replies.LINE_TOO_LONG.format(limit=MAX_COMMAND_LINE))
                if not error.consumed:
                    self.closed = True
                    return "line without a line ending exceeded the stream buffer"
                await self.writer.drain()
                continue

            if line is None:
                return self.close_reason or "client closed the connection"

            await self._dispatch(line)
            await self.writer.drain()
        return self.close_reason or "session ended"

    async def _dispatch(self, line: bytes) -> None:
        self.counters.commands += 1
        try:
            command = parse_command(line)
        except CommandSyntaxError as error:
            self.fail(replies.INVALID_COMMAND_LINE.format(detail=error.detail))
            return

        spec = COMMANDS.get(command.keyword)
        if spec is None:
            self.fail(replies.UNKNOWN_COMMAND)
            return
        if self.state not in spec.states:
            self.fail(
                replies.WRONG_STATE.format(
                    command=command.keyword, state=self.state.value
                )
            )
            return

        try:
            check_arguments(spec, command)
            await spec.handler(self, command)
        except CommandSyntaxError as error:
            self.fail(
                replies.INVALID_ARGUMENTS.format(
                    command=command.keyword, detail=error.detail
                )
            )
        except POP3Error as error:
            self.fail(error.reply)
            if error.close and not self.closed:
                self.closed = True
                self.close_reason = error.reply
        except (SessionAborted, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception(
                format_event(
                    "internal_error",
                    {"session": self.id, "command": command.keyword},
                )
            )
            self.fail(replies.INTERNAL_ERROR.format(session=self.id))

    def fail(self, reply: str) -> None:
        """Send an `-ERR` reply and close the session after MAX_ERRORS."""
        self.send(reply)
        self.counters.errors += 1
        if self.counters.errors >= MAX_ERRORS and not self.closed:
            self.send(replies.TOO_MANY_ERRORS)
            self.closed = True
            self.close_reason = "too many errors"

    async def shut_down(self) -> None:
        """Close the connection now if the session is waiting for the client.

        A session in the middle of a command finishes it, and its read loop
        then checks `server.closing`. Nothing is expunged either way.
        """
        if self.waiting_for_input and not self.closed:
            self.closed = True
            self.close_reason = "server shutting down"
            self.send(replies.SHUTTING_DOWN)
            await self._close()

    async def _close(self) -> None:
        self.closed = True
        if self.writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.drain()
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()

    def _log_disconnect(self, reason: str) -> None:
        counters = self.counters
        event(
            logger,
            "disconnect",
            session=self.id,
            reason=reason,
            user=self.account.address if self.account else None,
            commands=counters.commands,
            errors=counters.errors,
            retr=counters.retr,
            top=counters.top,
            dele=counters.dele,
            bytes_sent=counters.bytes_sent,
            seconds=f"{time.monotonic() - self._started:.3f}",
        )
