"""Session state of one SMTP connection, in three reset scopes.

- `ConnectionState` lives as long as the TCP connection: peer address,
  session id, TLS parameters and counters. STARTTLS clears only its
  EHLO part (RFC 3207 §4.2).
- `Transaction` is the envelope of one message: sender, parameters,
  recipients, queue id and the blob being written. MAIL starts one and
  RSET, EHLO, HELO, STARTTLS and the end of a message replace it.
  `Transaction.reset` aborts an unfinished blob, so a dropped transaction
  never leaves a partial file.
- `Recipient` (from `garrison.delivery`) is one accepted RCPT: its
  address, parameters and the accounts it reaches. A rejected RCPT leaves
  nothing behind.

`SessionState` is derived from these objects, never stored separately, so
it cannot disagree with them. The command table names the states in which
each command is allowed.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from garrison.delivery import Recipient
from garrison.directory import Account
from garrison.observability.log import event
from garrison.smtp.data import LineChecker
from garrison.smtp.replies import Reply
from garrison.smtpd.connection import Connection
from garrison.store.blobs import BlobWriter

if TYPE_CHECKING:
    from garrison.smtpd.screening import ClientScreen
    from garrison.smtpd.server import SMTPServer as SMTPServerContext

log = logging.getLogger("garrison.smtpd")


class SessionState(enum.Enum):
    """The position of a session in the RFC 5321 §4.1.4 command order."""

    CONNECTED = "connected"  # greeting sent, no EHLO/HELO yet
    READY = "ready"  # EHLO/HELO done, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    CHUNKING = "chunking"  # a BDAT chunk without LAST was received


@dataclass(slots=True)
class ConnectionState:
    """Facts about the connection that outlive every transaction."""

    session_id: str
    client_ip: str
    client_port: int
    helo: str | None = None
    esmtp: bool = False
    tls_version: str | None = None
    tls_cipher: str | None = None
    tls_bits: int | None = None
    # The account that AUTH logged in (RFC 4954), else None.
    account: Account | None = None
    auth_failures: int = 0
    commands: int = 0
    messages: int = 0
    rejects: int = 0
    errors: int = 0

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted."""
        return self.tls_version is not None

    def forget_client(self) -> None:
        """Forget the EHLO name and mode that the client sent (after STARTTLS)."""
        # RFC 3207 §4.2: after the handshake the server discards any
        # knowledge obtained from the client, such as the EHLO argument.
        self.helo = None
        self.esmtp = False
        self.account = None


@dataclass(slots=True)
class Transaction:
    """The envelope and content state of one mail transaction."""

    queue_id: str = ""
    has_sender: bool = False
    sender: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    smtputf8: bool = False
    declared_size: int | None = None
    recipients: list[Recipient] = field(default_factory=list)
    # BDAT state (RFC 3030): the blob and checker live across chunks.
    blob: BlobWriter | None = None
    checker: LineChecker | None = None
    chunking: bool = False
    chunking_failed: bool = False

    def reset(self) -> None:
        """Drop the envelope and abort any blob that was not committed."""
        if self.blob is not None:
            self.blob.abort()
        self.queue_id = ""
        self.has_sender = False
        self.sender = ""
        self.parameters = {}
        self.smtputf8 = False
        self.declared_size = None
        self.recipients = []
        self.blob = None
        self.checker = None
        self.chunking = False
        self.chunking_failed = False


def session_state(
    connection: ConnectionState, transaction: Transaction
) -> SessionState:
    """Derive the command-order state from the connection and transaction."""
    if connection.helo is None:
        return SessionState.CONNECTED
    if not transaction.has_sender:
        return SessionState.READY
    if transaction.chunking:
        return SessionState.CHUNKING
    if not transaction.recipients:
        return SessionState.MAIL
    return SessionState.RCPT


class Session:
    """Everything a command handler needs: services, I/O and the three scopes.

    Created by `SMTPServer.handle` for one connection. Handlers queue their
    replies with `reply`, which also counts client errors.
    """

    def __init__(
        self,
        server: SMTPServerContext,
        connection: Connection,
        state: ConnectionState,
    ) -> None:
        self.server = server
        self.io = connection
        self.connection = state
        self.transaction = Transaction()
        self.closing = False
        # The current activity, which graceful shutdown reads. It is "idle"
        # (waiting for a command), "busy", "data" (receiving content) or
        # "delivering" (blob committed and delivery running). Shutdown never
        # cancels a delivering session.
        self.phase = "busy"
        # DNS and local list screening of an MX client; None on submission.
        self.screen: ClientScreen | None = None
        # Set after a 554 greeting: only QUIT is accepted (RFC 5321 §3.1).
        self.refused = False

    @property
    def state(self) -> SessionState:
        """The current command-order state."""
        return session_state(self.connection, self.transaction)

    def reply(self, reply: Reply) -> None:
        """Queue a reply. A 5yz or 452 reply counts toward the error limit."""
        if reply.code >= 500 or reply.code == 452:
            self.connection.errors += 1
        self.io.send(reply.encode())

    def reject(self, stage: str, reply: Reply, recipient: str = "") -> None:
        """Queue a negative reply and log it as one `reject` event."""
        self.connection.rejects += 1
        event(
            log,
            "reject",
            session=self.connection.session_id,
            queue_id=self.transaction.queue_id or None,
            stage=stage,
            code=reply.code,
            enhanced=reply.enhanced,
            ip=self.connection.client_ip,
            helo=self.connection.helo,
            reason=reply.text,
            **{
                "from": f"<{self.transaction.sender}>"
                if self.transaction.has_sender
                else None,
                "to": f"<{recipient}>" if recipient else None,
            },
        )
        self.reply(reply)
