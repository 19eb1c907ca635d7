"""One IMAP connection: the state machine and the command dispatcher.

RFC 3501 §3 states: not authenticated, authenticated, selected, logout.
`COMMANDS` (built in `garrison.imap.commands`) maps each command name to a
`CommandSpec`: the handler, the states it is valid in, and whether untagged
EXPUNGE responses may follow it. The dispatcher enforces the states, so
handlers never check them.

The loop reads one command at a time (`CommandReader` enforces the size
limits), parses it, runs the handler with a `Response` buffer, adds the
changes other sessions made to the selected mailbox, appends the tagged
status and writes the buffer once. Any exception a handler did not expect
becomes `NO [SERVERBUG]` with the session id and is logged once with its
traceback; it never ends the session.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from garrison.imap import errors
from garrison.imap.command import Command, SpooledLiteral
from garrison.imap.encoder import Response
from garrison.imap.errors import EndSession, IMAPError
from garrison.imap.parser import ParseError, parse_command
from garrison.imap.reader import (
    CommandReader,
    ConnectionClosed,
    LineTooLong,
    LiteralTooBig,
)
from garrison.imap.selected import SelectedMailbox, UpdateStyle
from garrison.net.deflate import DeflateWriter
from garrison.observability.log import event
from garrison.store import MailboxNotFound

if TYPE_CHECKING:
    from garrison.directory import Account
    from garrison.imap.server import IMAPServer

log = logging.getLogger("garrison.imap")


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY_STATE = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOT_AUTHENTICATED = frozenset({State.NOT_AUTHENTICATED})
AUTHENTICATED = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})

Handler = Callable[
    ["Session", Command, Response], Awaitable[str | tuple[str, str] | None]
]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A row of the command table.

    `handler` returns the text of the tagged OK, or (text, code), or None
    for a plain "<NAME> completed". `expunge_ok` is False for the commands
    after which RFC 3501 §7.4.1 forbids untagged EXPUNGE (FETCH, STORE and
    SEARCH, but not their UID forms).
    """

    handler: Handler
    states: frozenset[State]
    expunge_ok: bool = True
    uid_expunge_ok: bool = True


# A handler returns this when it already sent its tagged response (STARTTLS).
ALREADY_SENT = ("", "already-sent")

# Filled by garrison.imap.commands at import time.
COMMANDS: dict[str, CommandSpec] = {}

# RFC 5161 §3.1: the extensions ENABLE can switch on, by upper-cased name,
# mapped to the spelling that the ENABLED response uses.
ENABLEABLE = {
    "CONDSTORE": "CONDSTORE",
    "QRESYNC": "QRESYNC",
    "IMAP4REV2": "IMAP4rev2",
    "UTF8=ACCEPT": "UTF8=ACCEPT",
}

# Failed LOGIN/AUTHENTICATE attempts before the server hangs up.
MAX_AUTH_FAILURES = 3
# Consecutive BAD responses before the server hangs up on a broken client.
MAX_BAD_COMMANDS = 20
# Seconds the client gets to complete the TLS handshake after STARTTLS.
TLS_HANDSHAKE_TIMEOUT = 60.0


def _is_loopback(peer: object) -> bool:
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        return ipaddress.ip_address(str(peer[0]).split("%")[0]).is_loopback
    except ValueError:
        return False


class Session:
    """State of one IMAP connection."""

    def __init__(
        self,
        server: IMAPServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.settings = server.settings
        self.store = server.store
        self.directory = server.directory
        self.writer = writer
        self.reader = CommandReader(
            reader, self._send_raw, max_line_length=self.settings.imap.max_line_length
        )
        self.id = secrets.token_hex(6)
        peer = writer.get_extra_info("peername")
        self.ip = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        self.loopback = _is_loopback(peer)
        self.tls_active = writer.get_extra_info("sslcontext") is not None
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.username: str | None = None
        self.selected: SelectedMailbox | None = None
        # Extensions switched on by ENABLE or implicitly (RFC 7162 §3.1:
        # CONDSTORE by its first use), by the names in ENABLEABLE.
        self.enabled: set[str] = set()
        self.auth_failures = 0
        self.bad_commands = 0
        self.commands = 0

    # -- policy -------------------------------------------------------------

    @property
    def plaintext_auth_allowed(self) -> bool:
        """True when LOGIN and AUTHENTICATE PLAIN may be used now."""
        if self.tls_active:
            return True
        return self.loopback and self.settings.tls.allow_plaintext_auth_from_loopback

    @property
    def condstore(self) -> bool:
        """True once CONDSTORE is on; QRESYNC implies it (RFC 7162 §3.2.3)."""
        return "CONDSTORE" in self.enabled or "QRESYNC" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def rev2(self) -> bool:
        """True after ENABLE IMAP4rev2 (RFC 9051 §2.3 and Appendix E)."""
        return "IMAP4REV2" in self.enabled

    @property
    def utf8_mailboxes(self) -> bool:
        """True when mailbox names travel as UTF-8 (RFC 9051 §5.1, RFC 6855 §3)."""
        return self.rev2 or "UTF8=ACCEPT" in self.enabled

    @property
    def update_style(self) -> UpdateStyle:
        return UpdateStyle(
            modseq=self.condstore, vanished=self.qresync, recent=not self.rev2
        )

    @property
    def starttls_available(self) -> bool:
        return not self.tls_active and self.server.listener.tls == "starttls"

    def capabilities(self) -> list[str]:
        """Return the capabilities valid in the current state (RFC 3501 §7.2.1)."""
        caps = [
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
        ]
        if self.state == State.NOT_AUTHENTICATED:
            if self.starttls_available:
                caps.append("STARTTLS")
            if self.plaintext_auth_allowed:
                caps.append("AUTH=PLAIN")
            else:
                # RFC 3501 §6.2.3: LOGINDISABLED while LOGIN would be refused.
                caps.append("LOGINDISABLED")
            return caps
        caps += ["UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE"]
        # RFC 7162, RFC 4731, RFC 5182, RFC 5032.
        caps += ["CONDSTORE", "QRESYNC", "ESEARCH", "SEARCHRES", "WITHIN"]
        caps += [
            "LIST-EXTENDED",  # RFC 5258
            "LIST-STATUS",  # RFC 5819
            "CREATE-SPECIAL-USE",  # RFC 6154 §3
            "SORT",  # RFC 5256
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "QUOTA",  # RFC 9208
            "QUOTA=RES-STORAGE",
            # RFC 7889: one limit for every mailbox, the literal size limit.
            f"APPENDLIMIT={self.settings.imap.max_literal_size}",
            "STATUS=SIZE",  # RFC 8438
            "BINARY",  # RFC 3516
            "MULTIAPPEND",  # RFC 3502
            "OBJECTID",  # RFC 8474
            "UTF8=ACCEPT",  # RFC 6855
        ]
        if not isinstance(self.writer, DeflateWriter):
            # RFC 4978 §3: compression can be started once per connection.
            caps.append("COMPRESS=DEFLATE")
        return caps

    @property
    def literal_limit(self) -> int:
        if self.state == State.NOT_AUTHENTICATED:
            return self.settings.imap.preauth_max_literal_size
        return self.settings.imap.max_literal_size

    # -- I/O ------------------------------------------------------------------

    async def _send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_continuation(self, data: bytes) -> None:
        await self._send_raw(data)

    async def send(self, response: Response) -> None:
        await response.flush(self.writer)

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Switch to TLS after the tagged OK to STARTTLS was sent."""
        # RFC 3501 §6.2.1 and RFC 3207 §4: drop plaintext pipelined after
        # STARTTLS; it must not be read as if it came over TLS.
        self.reader.discard_buffered()
        await self.writer.start_tls(context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        self.tls_active = True

    # -- selected mailbox ---------------------------------------------------

    def select(self, selected: SelectedMailbox) -> None:
        self.unselect()
        self.selected = selected
        self.state = State.SELECTED

    def unselect(self) -> None:
        if self.selected is not None:
            self.selected.close()
            self.selected = None
        if self.state == State.SELECTED:
            self.state = State.AUTHENTICATED

    def refresh(self, response: Response, allow_expunge: bool) -> None:
        """Add the untagged responses for changes other sessions made."""
        if self.selected is None:
            return
        try:
            self.selected.refresh(response, allow_expunge, self.update_style)
        except MailboxNotFound:
            self.unselect()
            raise EndSession("Selected mailbox was deleted") from None

    # -- main loop ----------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until LOGOUT, EOF, a timeout or a fatal error."""
        event(log, "connect", session=self.id, ip=self.ip, tls=self.tls_active)
        greeting = Response()
        greeting.status(
            None,
            errors.OK,
            "Garrison IMAP4rev1 ready",
            "CAPABILITY " + " ".join(self.capabilities()),
        )
        reason = "logout"
        try:
            await self.send(greeting)
            reason = await self._loop()
        except EndSession as exc:
            reason = "ended"
            await self._bye(exc.text)
        except (ConnectionError, ConnectionClosed, ssl.SSLError):
            reason = "connection_lost"
        finally:
            self.unselect()
            self.state = State.LOGOUT
            event(
                log,
                "disconnect",
                session=self.id,
                ip=self.ip,
                user=self.username,
                commands=self.commands,
                reason=reason,
            )

    async def _bye(self, text: str) -> None:
        if self.writer.is_closing():
            # A failed TLS handshake has already closed the transport.
            return
        response = Response()
        response.status(None, "BYE", text)
        try:
            await asyncio.wait_for(self.send(response), timeout=5)
        except (ConnectionError, TimeoutError, RuntimeError, ssl.SSLError):
            pass

    async def _loop(self) -> str:
        while self.state != State.LOGOUT:
            try:
                async with asyncio.timeout(self.settings.imap.autologout):
                    lines, literals = await self.reader.read_command(self.literal_limit)
            except TimeoutError:
                # RFC 3501 §5.4: the autologout timer.
                await self._bye("Autologout; idle for too long")
                return "autologout"
            except ConnectionClosed:
                return "client_closed"
            except LineTooLong as exc:
                await self._bye(f"Command line too long (limit {exc.limit} bytes)")
                return "line_too_long"
            except LiteralTooBig as exc:
                if await self._reject_literal(exc):
                    return "literal_too_big"
                continue
            try:
                await self._execute(lines, literals)
            finally:
                for literal in literals:
                    if isinstance(literal, SpooledLiteral):
                        literal.close()
            if self.bad_commands >= MAX_BAD_COMMANDS:
                await self._bye("Too many invalid commands")
                return "too_many_errors"
        return "logout"

    async def _reject_literal(self, exc: LiteralTooBig) -> bool:
        """Reject a literal over the limit; return True if the connection must close."""
        response = Response()
        is_append = exc.first_line.split(b" ", 2)[1:2] == [b"APPEND"] or (
            b" APPEND " in exc.first_line.upper()[:40]
        )
        text = (
            f"Literals of {exc.size} bytes in one command exceed the limit"
            f" of {exc.limit} bytes"
        )
        # RFC 7888 §4: NO [TOOBIG] suits a message that is too large; BAD for
        # other arguments.
        status = errors.NO if is_append and not exc.fatal else errors.BAD
        response.status(exc.tag, status, text, errors.TOOBIG)
        event(log, "literal_rejected", session=self.id, size=exc.size, limit=exc.limit)
        if exc.fatal:
            # RFC 7888 §4: the client already sent the literal, so the
            # connection cannot be resynchronised.
            response.status(None, "BYE", "Non-synchronizing literal too large")
        await self.send(response)
        self.bad_commands += 1
        return exc.fatal

    async def _execute(self, lines: list[bytes], literals: list) -> None:
        response = Response()
        try:
            command = parse_command(
                lines,
                literals,
                max_search_depth=self.settings.imap.max_search_depth,
                utf8_mailboxes=self.utf8_mailboxes,
            )
        except ParseError as exc:
            self.bad_commands += 1
            response.status(exc.tag, errors.BAD, exc.message, exc.code)
            await self.send(response)
            return
        self.commands += 1
        await self.dispatch(command, response)

    async def dispatch(self, command: Command, response: Response) -> None:
        """Run one command and send its responses, ending with the tagged status."""
        spec = COMMANDS.get(command.name)
        status, text, code = errors.OK, f"{command.name} completed", None
        if spec is None:
            status, text = errors.BAD, f"Unknown command {command.name}"
        elif self.state not in spec.states:
            status, text = (
                errors.BAD,
                f"{command.name} is not valid in the {self.state.value} state",
            )
        else:
            try:
                result = await spec.handler(self, command, response)
                if result is ALREADY_SENT:
                    return
                if isinstance(result, tuple):
                    text, code = result
                elif result is not None:
                    text = result
            except IMAPError as exc:
                status, text, code = exc.status, exc.text, exc.code
            except (EndSession, ConnectionError, ConnectionClosed, ssl.SSLError):
                raise
            except Exception:
                log.exception(
                    "event=command_failed session=%s command=%s", self.id, command.name
                )
                status, code = errors.NO, errors.SERVERBUG
                text = f"Internal error, session {self.id}"
        self.bad_commands = self.bad_commands + 1 if status == errors.BAD else 0
        if self.state == State.LOGOUT:
            response.status(command.tag, status, text, code)
            await self.send(response)
            return
        if spec is not None:
            allow = spec.uid_expunge_ok if command.uid else spec.expunge_ok
            self.refresh(response, allow)
        response.status(command.tag, status, text, code)
        await self.send(response)
