"""`SMTPServer`: the connection loop, command dispatch and graceful shutdown.

`SMTPServer.handle(reader, writer)` serves one connection: greeting, then
one command line at a time through the command table, until QUIT, an
error limit, a timeout or shutdown. `SMTPServer.shutdown()` ends every
session: idle sessions get 421 at once, a transaction that is receiving
data gets `server.shutdown_grace` seconds to finish, and a message whose
blob is committed is never interrupted, so no acknowledged message is lost.

Log events (logger `garrison.smtpd`, one logfmt line each): connect, tls,
reject, queued, error, limit, disconnect. No line contains message content.

Denial-of-service limits (`[smtp]` settings, see `garrison.smtpd.limits`):
input before the greeting and commands pipelined without PIPELINING end
the session with 554 5.5.1. A session over `max_session_duration`, or
content slower than `min_data_rate`, ends with 421 4.4.2. After
`tarpit_after_errors` errors, each further error reply waits
`tarpit_delay` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from garrison.config import ListenerSettings, Settings
from garrison.delivery import DeliveryPipeline
from garrison.directory import Directory
from garrison.net.limits import BANNED, ConnectionLimiter
from garrison.observability.log import event, format_event
from garrison.smtp import extensions, replies
from garrison.smtp.parser import SMTPSyntaxError, parse_command_line
from garrison.smtp.replies import Reply, format_lines
from garrison.smtpd.auth import MECHANISMS
from garrison.smtpd.commands import COMMANDS
from garrison.smtpd.connection import Connection, ConnectionClosed, LineTooLong
from garrison.smtpd.limits import (
    DATA_RATE,
    EARLY_TALKER,
    SESSION_DURATION,
    TARPIT,
    UNEXPECTED_PIPELINING,
    LimitExceeded,
    ProtocolViolation,
    log_limit,
)
from garrison.smtpd.screening import Screening
from garrison.smtpd.session import ConnectionState, Session
from garrison.smtpd.trace import new_session_id
from garrison.store import MailStore
from garrison.store.sending import SendingLog

log = logging.getLogger("garrison.smtpd")

# Seconds a client gets to complete the TLS handshake after STARTTLS.
HANDSHAKE_TIMEOUT = 30.0


class SMTPServer:
    """The SMTP receiving server (MX) for one listener."""

    def __init__(
        self,
        settings: Settings,
        listener: ListenerSettings,
        tls_context: ssl.SSLContext | None,
        directory: Directory,
        store: MailStore,
        delivery: DeliveryPipeline,
        limiter: ConnectionLimiter | None = None,
        **_unused: Any,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.tls_context = tls_context
        self.directory = directory
        self.store = store
        self.delivery = delivery
        self.sending = SendingLog(store)
        self.limiter = limiter or ConnectionLimiter.from_settings(settings)
        self.lockout = self.limiter.lockout
        # Base delay before a failed AUTH reply; AuthLockout doubles it per failure.
        self.auth_failure_delay = settings.limits.auth_failure_delay
        self.hostname = settings.server.hostname
        self.offers_starttls = listener.tls == "starttls" and tls_context is not None
        # Submission on a STARTTLS port accepts mail only over TLS; an MX
        # must accept plaintext, because RFC 3207 §4 forbids requiring TLS
        # of publicly-referenced servers.
        self.require_tls = (
            listener.protocol == "submission" and listener.tls == "starttls"
        )
        self.handshake_timeout = HANDSHAKE_TIMEOUT
        self.shutdown_grace = settings.server.shutdown_grace
        self.closing = False
        self._sessions: dict[Session, asyncio.Task[Any]] = {}
        self.screening = Screening.for_server(self)

        self.greeting = _with_host(replies.SERVICE_READY, self.hostname).encode()
        self.closing_reply = _with_host(replies.CLOSING, self.hostname).encode()
        self.helo_reply = f"250 {self.hostname}\r\n".encode()
        self._shutdown_reply = _with_host(replies.SHUTTING_DOWN, self.hostname).encode()
        self._timeout_reply = _with_host(replies.TIMEOUT, self.hostname).encode()
        self._errors_reply = _with_host(replies.TOO_MANY_ERRORS, self.hostname).encode()
        self._limit_replies = {
            reason: _with_host(reply, self.hostname).encode()
            for reason, reply in (
                (SESSION_DURATION, replies.SESSION_TOO_LONG),
                (DATA_RATE, replies.DATA_RATE_TOO_LOW),
            )
        }
        self._over_limit_reply = _with_host(replies.OVER_LIMIT, self.hostname).encode()
        self._banned_reply = _with_host(replies.BANNED, self.hostname).encode()
        self.auth_failures_reply = _with_host(
            replies.TOO_MANY_AUTH_FAILURES, self.hostname
        ).encode()
        self._ehlo_replies = {
            (tls, auth): self._build_ehlo_reply(tls, auth)
            for tls in (False, True)
            for auth in (False, True)
        }

    def _build_ehlo_reply(self, tls: bool, auth: bool) -> bytes:
        keywords = [
            self.hostname,
            extensions.PIPELINING,
            f"{extensions.SIZE} {self.settings.smtp.max_message_size}",
            extensions.EIGHTBITMIME,
            extensions.SMTPUTF8,
            extensions.ENHANCEDSTATUSCODES,
        ]
        # RFC 3207 §4.2: STARTTLS is not offered once TLS is active.
        if self.offers_starttls and not tls:
            keywords.append(extensions.STARTTLS)
        # RFC 4954 §3: AUTH followed by the mechanisms offered now.
        if auth:
            keywords.append(" ".join((extensions.AUTH, *MECHANISMS)))
        keywords.append(extensions.CHUNKING)
        keywords.append(extensions.DSN)
        return format_lines(250, keywords)

    def ehlo_reply(self, tls: bool, auth: bool = False) -> bytes:
        """Return the encoded EHLO reply: plain or TLS, with or without AUTH."""
        return self._ehlo_replies[tls, auth]

    # -- connection loop -----------------------------------------------------

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client connection until it ends.

        Errors are logged and end the session. Only a cancellation that does
        not come from `shutdown` propagates.
        """
        peer = writer.get_extra_info("peername") or ("", 0)
        admission = self.limiter.admit(str(peer[0]), self.listener.name)
        if admission is None:
            banned = self.limiter.last_rejection == BANNED
            reply = self._banned_reply if banned else self._over_limit_reply
            await _reject_connection(writer, reply)
            return
        try:
            await self._serve(reader, writer, peer)
        finally:
            admission.release()

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[Any, ...],
    ) -> None:
        state = ConnectionState(new_session_id(), str(peer[0]), int(peer[1]))
        session = Session(self, Connection(reader, writer), state)
        task = asyncio.current_task()
        assert task is not None
        self._sessions[session] = task
        if self.listener.tls == "implicit":
            self.record_tls(session)
        if self.screening is not None:
            session.screen = self.screening.start(state.client_ip)
        event(
            log,
            "connect",
            session=state.session_id,
            ip=state.client_ip,
            port=state.client_port,
            listener=self.listener.name,
        )

        limits = self.settings.smtp
        if limits.max_session_duration:
            loop = asyncio.get_running_loop()
            session.io.deadline = loop.time() + limits.max_session_duration
        reason = "error"
        try:
            if self.closing:
                session.io.send(self._shutdown_reply)
                reason = "shutdown"
                return
            if await self._talks_early(session):
                reason = EARLY_TALKER
                return
            refusal = None
            if session.screen is not None:
                refusal = await session.screen.connect_refusal()
            if refusal is not None:
                # RFC 5321 §3.1: 554 in place of the greeting, then 503 to
                # every command until QUIT.
                session.reject("connect", refusal)
                session.refused = True
            else:
                session.io.send(self.greeting)
            reason = await self._run(session)
        except asyncio.CancelledError:
            if not self.closing:
                raise
            # shutdown() cancelled this session while it waited for input
            # or past the grace period: reply 421 and end cleanly.
            task.uncancel()
            session.transaction.reset()
            session.io.send(self._shutdown_reply)
            reason = "shutdown"
        except Exception:
            log.error(
                format_event(
                    "error", {"session": state.session_id, "stage": "session"}
                ),
                exc_info=True,
            )
        finally:
            session.transaction.reset()
            if session.screen is not None:
                session.screen.close()
            del self._sessions[session]
            await session.io.close()
            event(
                log,
                "disconnect",
                session=state.session_id,
                ip=state.client_ip,
                reason=reason,
                commands=state.commands,
                messages=state.messages,
                rejects=state.rejects,
            )

    async def _run(self, session: Session) -> str:
        """Read and dispatch commands; return why the session ended."""
        limits = self.settings.smtp
        io = session.io
        connection = session.connection
        while True:
            # A BDAT transaction under way may send its remaining chunks
            # within the grace period, as a DATA transaction may.
            if self.closing and not session.transaction.chunking:
                io.send(self._shutdown_reply)
                return "shutdown"

            try:
                session.phase = "idle"
                errors_before = connection.errors
                ends_group = False
                try:
                    line = await io.read_line(
                        limits.command_timeout, limits.max_command_line_length
                    )
                except LineTooLong:
                    session.phase = "busy"
                    # RFC 5321 §4.5.3.1.4: the line was over the command limit.
                    session.reject("command", replies.LINE_TOO_LONG)
                else:
                    session.phase = "busy"
                    connection.commands += 1
                    ends_group = await self._dispatch(session, line)
                await self._tarpit(session, errors_before)
                if ends_group:
                    await io.flush()
            except ProtocolViolation as exc:
                io.send(replies.UNEXPECTED_PIPELINING.encode())
                return exc.reason
            except LimitExceeded as exc:
                log_limit(connection.session_id, connection.client_ip, exc.reason)
                io.send(self._limit_replies[exc.reason])
                return exc.reason
            except TimeoutError:
                # RFC 5321 §4.5.3.2: the server may close an idle session.
                io.send(self._timeout_reply)
                return "timeout"
            except ConnectionClosed:
                return "disconnect"

            if session.closing:
                return "quit"
            if connection.errors >= limits.max_errors:
                io.send(self._errors_reply)
                return "too_many_errors"

    async def _dispatch(self, session: Session, line: bytes) -> bool:
        """Run one command line through the command table.

        Returns whether the command ends a pipeline group, so that its
        replies must be flushed. Raises ProtocolViolation when the client
        pipelined commands without PIPELINING.
        """
        try:
            command = parse_command_line(line)
        except SMTPSyntaxError as exc:
            # RFC 5321 §3.1: after a 554 greeting, 503 to all but QUIT.
            session.reject(
                "command", replies.SESSION_REFUSED if session.refused else exc.reply
            )
            return False

        connection = session.connection
        if session.refused and command.verb != "QUIT":
            # RFC 5321 §3.1: after a 554 greeting, 503 to all but QUIT.
            session.reject(command.verb.lower(), replies.SESSION_REFUSED)
            return False
        # RFC 2920: PIPELINING is an extension that the EHLO reply
        # advertises, so before EHLO or after HELO the client must wait for
        # each reply. EHLO itself may be followed by a pipelined group.
        if (
            not connection.esmtp
            and command.verb != "EHLO"
            and session.io.has_pending_input()
        ):
            dropped = session.io.discard_pending_input()
            log_limit(
                connection.session_id,
                connection.client_ip,
                UNEXPECTED_PIPELINING,
                command=command.verb,
                dropped=dropped,
            )
            raise ProtocolViolation(UNEXPECTED_PIPELINING)

        spec = COMMANDS.get(command.verb)
        if spec is None:
            session.reject("command", replies.UNKNOWN_COMMAND)
            return False
        stage = command.verb.lower()
        state = session.state
        if state not in spec.states:
            session.reject(stage, spec.state_error(state))
            return False
        if self.require_tls and not spec.before_tls and not session.connection.tls:
            session.reject(stage, replies.MUST_USE_TLS)
            return False

        try:
            await spec.handler(session, command.argument)
        except (TimeoutError, ConnectionClosed):
            raise
        except Exception:
            # A bug or an unexpected service failure: log it once with its
            # traceback, drop the transaction and tell the client to retry.
            log.error(
                format_event(
                    "error",
                    {
                        "session": session.connection.session_id,
                        "queue_id": session.transaction.queue_id or None,
                        "stage": stage,
                    },
                ),
                exc_info=True,
            )
            session.transaction.reset()
            session_id = session.connection.session_id
            text = f"{replies.LOCAL_ERROR.text} (session {session_id})"
            session.reply(replies.LOCAL_ERROR.with_text(text))
        return spec.ends_group

    async def _talks_early(self, session: Session) -> bool:
        """Wait `greeting_delay`, then reject a client that already sent input.

        An SMTP client waits for the greeting before it sends anything, so
        early input marks a client that ignores replies. Returns True after
        queueing 554 5.5.1 and logging the limit.
        """
        # Like Postfix's postscreen, the delay applies to the MX only: a
        # submission client has a password to lose, not a spam run to win.
        delay = self.settings.smtp.greeting_delay if self.listener.protocol == "smtp" else 0
        if delay > 0:
            # Shutdown cancels an idle session at once, so the delay does
            # not hold it up.
            session.phase = "idle"
            await asyncio.sleep(delay)
            session.phase = "busy"
        if not session.io.has_pending_input():
            return False
        # Dropping the unread input lets the close send FIN, not RST, so
        # the client receives the reply.
        dropped = session.io.discard_pending_input()
        connection = session.connection
        log_limit(
            connection.session_id, connection.client_ip, EARLY_TALKER, dropped=dropped
        )
        session.io.send(replies.EARLY_TALKER.encode())
        return True

    async def _tarpit(self, session: Session, errors_before: int) -> None:
        """Delay the error reply of the last command once the tarpit applies.

        The delay applies from error number `tarpit_after_errors + 1` on, but
        not to the error that reaches `max_errors`, since that one ends the
        session anyway. The limit is logged on the first delayed reply.
        """
        limits = self.settings.smtp
        errors = session.connection.errors
        if (
            errors == errors_before
            or not limits.tarpit_after_errors
            or not limits.tarpit_delay
            or errors <= limits.tarpit_after_errors
            or errors >= limits.max_errors
        ):
            return
        if errors_before <= limits.tarpit_after_errors:
            connection = session.connection
            log_limit(
                connection.session_id, connection.client_ip, TARPIT, errors=errors
            )
        session.phase = "idle"
        await asyncio.sleep(limits.tarpit_delay)
        session.phase = "busy"

    def record_tls(self, session: Session) -> None:
        """Store the TLS version and cipher of the session and log them."""
        ssl_object = session.io.writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        connection = session.connection
        connection.tls_version = ssl_object.version() or "TLS"
        cipher = ssl_object.cipher()
        if cipher:
            connection.tls_cipher = cipher[0]
            connection.tls_bits = cipher[2]
        event(
            log,
            "tls",
            session=connection.session_id,
            version=connection.tls_version,
            cipher=connection.tls_cipher,
        )

    # -- shutdown ------------------------------------------------------------

    async def shutdown(self) -> None:
        """End every session cleanly; return when all have ended.

        Idle sessions get 421 4.3.2 at once. Sessions inside a command or
        between the chunks of a BDAT transaction get `shutdown_grace`
        seconds to reach the next command,
        where they also get 421. After that, sessions still receiving data
        are cancelled (421, blob aborted). A session that is delivering a
        committed message is never cancelled.
        """
        self.closing = True
        for session, task in list(self._sessions.items()):
            if session.phase == "idle" and not session.transaction.chunking:
                task.cancel()
        pending = list(self._sessions.values())
        if pending:
            await asyncio.wait(pending, timeout=self.shutdown_grace)

        for session, task in list(self._sessions.items()):
            if session.phase != "delivering":
                task.cancel()
        pending = list(self._sessions.values())
        if pending:
            await asyncio.wait(pending, timeout=self.shutdown_grace)
        # Sessions still running go straight to 421 and issue no more MAIL,
        # which is the only command that reads the sending log.
        self.sending.close()


async def _reject_connection(writer: asyncio.StreamWriter, reply: bytes) -> None:
    try:
        writer.write(reply)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass


def _with_host(reply: Reply, hostname: str) -> Reply:
    # RFC 5321 §4.2: the 220, 221 and 421 replies start with the server's name.
    return reply.with_text(f"{hostname} {reply.text}")
