"""The POP3 server object that the server package binds to a listener.

`POP3Server.handle` serves one connection (already wrapped in TLS for an
implicit-TLS listener) and `POP3Server.shutdown` ends every open session
without applying its DELE marks, as RFC 1939 §6 requires for a session that
did not QUIT.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from garrison.config import ListenerSettings, Settings
from garrison.net.limits import BANNED, ConnectionLimiter
from garrison.observability.log import event, format_event
from garrison.pop3 import replies
from garrison.pop3.session import Session

logger = logging.getLogger("garrison.pop3")

# Seconds that sessions in the middle of a command get to finish it at
# shutdown before their tasks are cancelled.
SHUTDOWN_GRACE = 10.0


class POP3Server:
    """Serve POP3 on one listener.

    `directory` must provide `async authenticate(username, password)` and
    `store` the `garrison.store.MailStore` reads and writes named in the
    handlers. `tls_context` is used for STLS when the listener's `tls` is
    "starttls"; implicit TLS is set up by the caller of asyncio.start_server.
    Other keyword arguments name services that POP3 does not use and are
    ignored, so every protocol server can be built with the same call.
    """

    def __init__(
        self,
        settings: Settings,
        listener: ListenerSettings,
        tls_context: ssl.SSLContext | None,
        directory: Any,
        store: Any,
        *,
        auth_failure_delay: float | None = None,
        limiter: ConnectionLimiter | None = None,
        **services: Any,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.tls_context = tls_context
        self.directory = directory
        self.store = store
        self.limiter = limiter or ConnectionLimiter.from_settings(settings)
        self.lockout = self.limiter.lockout
        # Base delay before a failed login's reply; AuthLockout doubles it
        # per failure. None takes `limits.auth_failure_delay`.
        self.auth_failure_delay = (
            settings.limits.auth_failure_delay
            if auth_failure_delay is None
            else auth_failure_delay
        )
        self.hostname = settings.server.hostname
        self.closing = False
        self._sessions: dict[Session, asyncio.Task[Any]] = {}

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection until it ends.

        Errors are logged, not raised; only cancellation propagates.
        """
        if self.closing:
            await _refuse(writer)
            return
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        admission = self.limiter.admit(ip, self.listener.name)
        if admission is None:
            banned = self.limiter.last_rejection == BANNED
            await _refuse(writer, replies.BANNED if banned else replies.OVER_LIMIT)
            return
        try:
            await self._serve(reader, writer)
        finally:
            admission.release()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = Session(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._sessions[session] = task
        try:
            await session.run()
        except Exception:
            # Session.run handles every error it expects; anything else is a
            # bug, logged here once so the listener keeps serving.
            logger.exception(format_event("session_crash", {"session": session.id}))
        finally:
            self._sessions.pop(session, None)

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """End every open session, then return.

        Idle sessions get `-ERR [SYS/TEMP]` and are closed at once. A session
        in the middle of a command (a RETR, a QUIT writing to the store) may
        finish it within `grace` seconds; after that its task is cancelled.
        """
        self.closing = True
        sessions = dict(self._sessions)
        event(logger, "shutdown", listener=self.listener.name, sessions=len(sessions))
        for session in sessions:
            await session.shut_down()

        tasks = set(sessions.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)


async def _refuse(
    writer: asyncio.StreamWriter, reply: str = replies.SHUTTING_DOWN
) -> None:
    try:
        writer.write(reply.encode("ascii") + b"\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass
