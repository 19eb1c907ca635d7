"""The IMAP listener: one `Session` per connection.

`IMAPServer(settings, listener, tls_context, directory, store)` is created
by the server package for each IMAP listener; `handle` serves one
connection and `shutdown` ends every open session with `* BYE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import garrison.imap.commands  # noqa: F401  (fills the command table)
from garrison.config import ListenerSettings, Settings
from garrison.directory import Directory
from garrison.imap.encoder import Response
from garrison.imap.session import Session
from garrison.net.limits import BANNED, ConnectionLimiter
from garrison.observability.log import event
from garrison.store import MailStore

log = logging.getLogger("garrison.imap")


class IMAPServer:
    """Serves IMAP4rev1 connections for one listener."""

    def __init__(
        self,
        settings: Settings,
        listener: ListenerSettings,
        tls_context: ssl.SSLContext,
        directory: Directory,
        store: MailStore,
        limiter: ConnectionLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.tls_context = tls_context
        self.directory = directory
        self.store = store
        self.limiter = limiter or ConnectionLimiter.from_settings(settings)
        self.lockout = self.limiter.lockout
        # Base delay before a failed login's reply; AuthLockout doubles it
        # per failure.
        self.auth_failure_delay = settings.limits.auth_failure_delay
        self._sessions: dict[asyncio.Task, Session] = {}
        self._closing = False

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection; unexpected errors are logged, not raised."""
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        admission = self.limiter.admit(ip, self.listener.name)
        if admission is None:
            banned = self.limiter.last_rejection == BANNED
            await _reject_connection(writer, _BANNED_TEXT if banned else _OVER_LIMIT_TEXT)
            return
        try:
            await self._serve(task, reader, writer)
        finally:
            admission.release()

    async def _serve(
        self,
        task: asyncio.Task,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        session = Session(self, reader, writer)
        self._sessions[task] = session
        try:
            await session.run()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("event=session_failed session=%s", session.id)
        finally:
            self._sessions.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=2)

    async def shutdown(self) -> None:
        """Send `* BYE` to every session and close it (RFC 3501 §7.1.5)."""
        self._closing = True
        sessions = list(self._sessions.items())
        event(log, "shutdown", listener=self.listener.name, sessions=len(sessions))
        for task, session in sessions:
            bye = Response()
            bye.status(None, "BYE", "Server shutting down")
            with contextlib.suppress(Exception):
                session.writer.write(bytes(bye.buffer))
            task.cancel()
        if sessions:
            await asyncio.wait([task for task, _ in sessions], timeout=5)


_OVER_LIMIT_TEXT = "Too many connections, try again later"
_BANNED_TEXT = "Access from your address is blocked for a while"


async def _reject_connection(writer: asyncio.StreamWriter, text: str) -> None:
    # RFC 3501 §7.1.5: BYE as the greeting means the server will not accept
    # the connection.
    bye = Response()
    bye.status(None, "BYE", text)
    with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
        writer.write(bytes(bye.buffer))
        await asyncio.wait_for(writer.drain(), timeout=2)
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), timeout=2)
