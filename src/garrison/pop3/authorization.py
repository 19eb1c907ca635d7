"""Handlers for the AUTHORIZATION state: CAPA, STLS, USER, PASS, AUTH, QUIT.

A successful login takes a snapshot of the account's INBOX as the maildrop
and moves the session to the TRANSACTION state (RFC 1939 §4).

Concurrent sessions on one maildrop are allowed, so `[IN-USE]` is never
sent. Each session works
on its own snapshot. A message that another session removed is reported by
RETR and TOP as removed, and expunging it again at QUIT is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from garrison.observability.log import event, format_event
from garrison.pop3 import replies
from garrison.pop3.errors import LineTooLong, POP3Error
from garrison.pop3.maildrop import Maildrop
from garrison.pop3.parser import MAX_SASL_RESPONSE_LINE, Command, strip_line_ending
from garrison.pop3.sasl import decode_base64, parse_plain
from garrison.pop3.state import State

if TYPE_CHECKING:
    from garrison.directory import Account
    from garrison.pop3.session import Session

logger = logging.getLogger("garrison.pop3")

SASL_MECHANISMS = ("PLAIN",)

# Failed logins in one session before it is closed.
MAX_AUTH_FAILURES = 3


def capabilities(session: Session) -> list[str]:
    """Return the CAPA lines for the session's current state (RFC 2449 §6)."""
    lines = [
        "TOP",
        "USER",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        # RFC 3206 §6: failed logins carry [AUTH] or [SYS/...] codes.
        "AUTH-RESP-CODE",
        "SASL " + " ".join(SASL_MECHANISMS),
    ]
    if session.stls_available:
        lines.append("STLS")
    # RFC 2449 §6.9 lets the server name its implementation; the version is
    # left out so it cannot guide an attacker.
    lines.append("IMPLEMENTATION Garrison")
    return lines


async def capa(session: Session, command: Command) -> None:
    session.send_multiline(replies.CAPA_FOLLOWS, capabilities(session))


async def stls(session: Session, command: Command) -> None:
    if not session.stls_available:
        raise POP3Error(replies.STLS_NOT_AVAILABLE)
    session.send(replies.STLS_READY)
    await session.start_tls()


async def user(session: Session, command: Command) -> None:
    session.require_plaintext_auth_allowed()
    # The reply is the same whether or not the user exists, so USER cannot
    # be used to probe for accounts.
    session.pending_user = command.args[0]
    session.send(replies.USER_ACCEPTED)


async def pass_(session: Session, command: Command) -> None:
    username, session.pending_user = session.pending_user, None
    if username is None:
        raise POP3Error(replies.PASS_WITHOUT_USER)
    session.require_plaintext_auth_allowed()
    await log_in(session, username, command.raw_args, mechanism="USER")


async def auth(session: Session, command: Command) -> None:
    if not command.args:
        session.send_multiline(replies.AUTH_MECHANISMS_FOLLOW, list(SASL_MECHANISMS))
        return

    mechanism = command.args[0].upper()
    if mechanism not in SASL_MECHANISMS:
        raise POP3Error(
            replies.AUTH_UNSUPPORTED_MECHANISM.format(mechanism=command.args[0][:40])
        )
    session.require_plaintext_auth_allowed()

    if len(command.args) == 2:
        response = command.args[1]
    else:
        response = await _read_sasl_response(session)

    # RFC 5034 §4: "*" cancels the exchange and the AUTH command fails.
    if response == "*":
        raise POP3Error(replies.AUTH_CANCELLED)
    # RFC 5034 §4: "=" is an initial response of zero length.
    message = b"" if response == "=" else decode_base64(response)
    username, password = parse_plain(message)
    await log_in(session, username, password, mechanism="PLAIN")


async def _read_sasl_response(session: Session) -> str:
    # RFC 5034 §4: an empty server challenge is "+" followed by one space.
    session.send(replies.AUTH_CONTINUE)
    await session.writer.drain()

    try:
        line = await session.read_line(MAX_SASL_RESPONSE_LINE)
    except LineTooLong as error:
        raise POP3Error(
            replies.AUTH_LINE_TOO_LONG.format(limit=MAX_SASL_RESPONSE_LINE),
            close=not error.consumed,
        ) from None
    if line is None:
        raise POP3Error(replies.AUTH_CANCELLED, close=True)

    try:
        return strip_line_ending(line).decode("ascii").strip(" ")
    except UnicodeDecodeError:
        raise POP3Error(replies.AUTH_INVALID_BASE64) from None


async def log_in(
    session: Session, username: str, password: str, mechanism: str
) -> None:
    """Check the credentials and enter the TRANSACTION state.

    Raises POP3Error with an [AUTH] reply after a delay from AuthLockout
    when they are wrong, closing the session after MAX_AUTH_FAILURES or when
    the address is banned, and with a [SYS/TEMP]
    reply when the directory or the store fails.
    """
    try:
        account = await session.server.directory.authenticate(username, password)
    except Exception:
        logger.exception(
            format_event(
                "auth", {"session": session.id, "result": "error", "user": username}
            )
        )
        raise POP3Error(replies.MAILDROP_UNAVAILABLE) from None

    if account is None:
        session.counters.auth_failures += 1
        server = session.server
        delay = server.lockout.record_failure(
            session.peer_ip, username, server.auth_failure_delay
        )
        event(
            logger,
            "auth",
            session=session.id,
            result="failed",
            mechanism=mechanism,
            user=username,
            ip=session.peer_ip,
        )
        # Slows down password guessing over all connections from this
        # address and for this account.
        await asyncio.sleep(delay)
        close = session.counters.auth_failures >= MAX_AUTH_FAILURES
        close = close or server.lockout.is_banned(session.peer_ip)
        raise POP3Error(replies.AUTH_FAILED, close=close)

    maildrop = open_maildrop(session, account)
    session.account = account
    session.maildrop = maildrop
    session.state = State.TRANSACTION
    event(
        logger,
        "auth",
        session=session.id,
        result="ok",
        mechanism=mechanism,
        user=account.address,
        ip=session.peer_ip,
        messages=maildrop.count,
        octets=maildrop.octets,
    )
    session.send(
        replies.MAILDROP_READY.format(count=maildrop.count, octets=maildrop.octets)
    )


def open_maildrop(session: Session, account: Account) -> Maildrop:
    """Snapshot the account's INBOX (RFC 1939 §4: the maildrop at login).

    Raises POP3Error with MAILDROP_UNAVAILABLE when the INBOX is missing or
    cannot be read.
    """
    store = session.server.store
    try:
        mailbox = store.get_mailbox(account.id, "INBOX")
        records = store.messages(mailbox.id) if mailbox is not None else None
    except Exception:
        logger.exception(
            format_event(
                "maildrop_error", {"session": session.id, "user": account.address}
            )
        )
        raise POP3Error(replies.MAILDROP_UNAVAILABLE) from None

    if mailbox is None or records is None:
        event(
            logger,
            "maildrop_error",
            level=logging.ERROR,
            session=session.id,
            user=account.address,
            error="INBOX not found",
        )
        raise POP3Error(replies.MAILDROP_UNAVAILABLE)
    return Maildrop(mailbox.id, mailbox.uidvalidity, records)


async def quit(session: Session, command: Command) -> None:
    """QUIT in the AUTHORIZATION state: close without touching the store."""
    session.send(replies.BYE.format(hostname=session.server.hostname))
    session.closed = True
    session.close_reason = "QUIT"
