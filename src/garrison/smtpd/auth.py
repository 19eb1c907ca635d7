"""AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.

AUTH is offered only on listeners with `auth = true`, and only over TLS,
or in plaintext from a loopback address when
`tls.allow_plaintext_auth_from_loopback` is set. Otherwise EHLO does not
list it and AUTH gets 538 5.7.11. A failed login costs the client a delay
from `AuthLockout` that doubles with each failure from its address or for
the account, and the session ends after MAX_AUTH_FAILURES failures or when
the address is banned. Log lines name the mechanism and user name,
never the password or the base64 data.
"""

from __future__ import annotations

import asyncio
import base64
import logging

from garrison.net.sasl import (
    SASLError,
    SASLFailure,
    decode_base64,
    decode_text,
    parse_plain,
)
from garrison.net.tls import is_loopback
from garrison.observability.log import event, format_event
from garrison.smtp import replies
from garrison.smtpd.connection import LineTooLong
from garrison.smtpd.session import Session

log = logging.getLogger("garrison.smtpd")

MECHANISMS = ("PLAIN", "LOGIN")
# RFC 4954 §4: a server accepts AUTH response lines of at least 12288 octets.
MAX_AUTH_LINE = 12288 + 2
MAX_AUTH_FAILURES = 3

# The LOGIN mechanism's prompts, "Username:" and "Password:" in base64.
_LOGIN_USERNAME = base64.b64encode(b"Username:").decode("ascii")
_LOGIN_PASSWORD = base64.b64encode(b"Password:").decode("ascii")

_SASL_REPLIES = {
    SASLFailure.INVALID_BASE64: replies.AUTH_INVALID_BASE64,
    SASLFailure.MALFORMED: replies.AUTH_MALFORMED,
    # Acting as another user is not allowed; RFC 4954 §6 names 535 5.7.8.
    SASLFailure.AUTHZID_MISMATCH: replies.AUTH_FAILED,
}


class _Cancelled(Exception):
    """The client cancelled the exchange with "*" (RFC 4954 §4)."""


def auth_allowed(session: Session) -> bool:
    """Return whether this connection may authenticate now (TLS or trusted loopback)."""
    connection = session.connection
    if not session.server.listener.auth:
        return False
    if connection.tls:
        return True
    return (
        session.server.settings.tls.allow_plaintext_auth_from_loopback
        and is_loopback(connection.client_ip)
    )


async def handle_auth(session: Session, argument: str) -> None:
    """AUTH mechanism [initial-response]: run one SASL exchange (RFC 4954 §4)."""
    if not session.server.listener.auth:
        session.reject("auth", replies.NOT_IMPLEMENTED)
        return
    # RFC 4954 §4: after a successful AUTH, further AUTH commands get 503.
    if session.connection.account is not None:
        session.reject("auth", replies.ALREADY_AUTHENTICATED)
        return
    words = argument.split(" ")
    if not argument or len(words) > 2:
        session.reject("auth", replies.SYNTAX_ERROR)
        return
    mechanism = words[0].upper()
    if mechanism not in MECHANISMS:
        session.reject("auth", replies.AUTH_UNKNOWN_MECHANISM)
        return
    if not auth_allowed(session):
        # RFC 4954 §6: 538 when the mechanism needs an encrypted connection.
        session.reject("auth", replies.ENCRYPTION_REQUIRED)
        return

    initial = words[1] if len(words) == 2 else None
    try:
        if mechanism == "PLAIN":
            username, password = await _exchange_plain(session, initial)
        else:
            username, password = await _exchange_login(session, initial)
    except SASLError as exc:
        session.reject("auth", _SASL_REPLIES[exc.failure])
        return
    except _Cancelled:
        session.reject("auth", replies.AUTH_CANCELLED)
        return
    except LineTooLong:
        session.reject("auth", replies.AUTH_LINE_TOO_LONG)
        return
    await _log_in(session, mechanism, username, password)


async def _read_response(session: Session) -> bytes:
    line = await session.io.read_line(
        session.server.settings.smtp.command_timeout, MAX_AUTH_LINE
    )
    try:
        text = line.decode("ascii").strip(" ")
    except UnicodeDecodeError:
        raise SASLError(SASLFailure.INVALID_BASE64) from None
    if text == "*":
        raise _Cancelled()
    return decode_base64(text)


def _challenge(session: Session, text: str) -> None:
    session.reply(replies.AUTH_CHALLENGE.format(challenge=text))


def _initial_response(initial: str) -> bytes:
    # RFC 4954 §4: "=" is an initial response of zero length.
    return b"" if initial == "=" else decode_base64(initial)


async def _exchange_plain(session: Session, initial: str | None) -> tuple[str, str]:
    if initial is None:
        # RFC 4616 §2: the server's first challenge is empty.
        _challenge(session, "")
        message = await _read_response(session)
    else:
        message = _initial_response(initial)
    return parse_plain(message)


async def _exchange_login(session: Session, initial: str | None) -> tuple[str, str]:
    if initial is None:
        _challenge(session, _LOGIN_USERNAME)
        username = decode_text(await _read_response(session))
    else:
        username = decode_text(_initial_response(initial))
    _challenge(session, _LOGIN_PASSWORD)
    password = decode_text(await _read_response(session))
    return username, password


async def _log_in(
    session: Session, mechanism: str, username: str, password: str
) -> None:
    connection = session.connection
    server = session.server
    try:
        account = await server.directory.authenticate(username, password)
    except Exception:
        log.error(
            format_event(
                "auth",
                {"session": connection.session_id, "result": "error", "user": username},
            ),
            exc_info=True,
        )
        session.reply(replies.AUTH_TEMPORARY_FAILURE)
        return

    if account is None:
        connection.auth_failures += 1
        delay = server.lockout.record_failure(
            connection.client_ip, username, server.auth_failure_delay
        )
        event(
            log,
            "auth",
            session=connection.session_id,
            result="failed",
            mechanism=mechanism,
            user=username,
            ip=connection.client_ip,
            failures=connection.auth_failures,
        )
        # Slows down password guessing: the delay grows with the failures
        # from this address and for this account, over all connections.
        await asyncio.sleep(delay)
        if connection.auth_failures >= MAX_AUTH_FAILURES or server.lockout.is_banned(
            connection.client_ip
        ):
            session.io.send(server.auth_failures_reply)
            session.closing = True
            return
        session.reply(replies.AUTH_FAILED)
        return

    connection.account = account
    event(
        log,
        "auth",
        session=connection.session_id,
        result="ok",
        mechanism=mechanism,
        user=account.address,
        ip=connection.client_ip,
    )
    session.reply(replies.AUTH_OK)
