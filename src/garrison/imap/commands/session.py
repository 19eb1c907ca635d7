"""Handlers for the any-state and not-authenticated commands.

CAPABILITY, NOOP, LOGOUT (RFC 3501 §6.1), STARTTLS, LOGIN, AUTHENTICATE
PLAIN with SASL-IR (RFC 3501 §6.2, RFC 4959, RFC 4616), ID (RFC 2971),
ENABLE (RFC 5161: CONDSTORE, QRESYNC, IMAP4rev2)
and NAMESPACE (RFC 2342). LOGIN and AUTHENTICATE are
refused with PRIVACYREQUIRED before TLS unless the peer is on loopback and
`tls.allow_plaintext_auth_from_loopback` is set. Passwords are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from garrison.imap import errors
from garrison.imap.command import Authenticate, Command, Enable, Id, Login
from garrison.imap.encoder import Response, nstring, string
from garrison.imap.errors import EndSession, bad, no
from garrison.imap.reader import LineTooLong
from garrison.imap.session import (
    ALREADY_SENT,
    ENABLEABLE,
    MAX_AUTH_FAILURES,
    Session,
    State,
    log,
)
from garrison.observability.log import event

SERVER_ID = {"name": "Garrison", "vendor": "Garrison"}
# RFC 4616 §2: authzid, authcid and password are each at most 255 octets.
_MAX_PLAIN_FIELD = 255


async def capability(session: Session, command: Command, response: Response) -> None:
    response.untagged("CAPABILITY " + " ".join(session.capabilities()))


async def noop(session: Session, command: Command, response: Response) -> None:
    # The dispatcher adds the pending mailbox updates (RFC 3501 §6.1.2).
    return None


async def logout(session: Session, command: Command, response: Response) -> None:
    response.status(None, "BYE", "Logging out")
    session.unselect()
    session.state = State.LOGOUT


async def starttls(
    session: Session, command: Command, response: Response
) -> tuple[str, str]:
    if not session.starttls_available:
        raise bad(
            "TLS is already active"
            if session.tls_active
            else "STARTTLS is not offered on this port"
        )
    response.status(command.tag, errors.OK, "Begin TLS negotiation now")
    await session.send(response)
    # No task switch between the OK and start_tls: wrapping it in wait_for
    # would let the loop read the ClientHello into the plaintext buffer,
    # which start_tls then drops, and the handshake would hang.
    try:
        await session.start_tls(session.server.tls_context)
    except (TimeoutError, OSError, ConnectionError) as exc:
        event(
            log,
            "tls_failed",
            session=session.id,
            ip=session.ip,
            error=type(exc).__name__,
        )
        raise EndSession("TLS negotiation failed") from None
    event(log, "starttls", session=session.id, ip=session.ip)
    return ALREADY_SENT


async def _complete_login(
    session: Session, username: str, password: str
) -> tuple[str, str]:
    if not session.plaintext_auth_allowed:
        # RFC 3501 §6.2.3: LOGIN is rejected while LOGINDISABLED is advertised.
        raise no("Use STARTTLS or IMAPS before logging in", errors.PRIVACYREQUIRED)
    account = await session.directory.authenticate(username, password)
    if account is None:
        session.auth_failures += 1
        server = session.server
        delay = server.lockout.record_failure(
            session.ip, username, server.auth_failure_delay
        )
        event(
            log,
            "auth",
            session=session.id,
            ip=session.ip,
            user=username,
            result="failed",
        )
        # Slows down password guessing over all connections from this
        # address and for this account.
        await asyncio.sleep(delay)
        if session.auth_failures >= MAX_AUTH_FAILURES or server.lockout.is_banned(
            session.ip
        ):
            raise EndSession("Too many authentication failures")
        # RFC 5530 §3: AUTHENTICATIONFAILED.
        raise no("Authentication failed", errors.AUTHENTICATIONFAILED)
    session.account = account
    session.username = account.address
    session.state = State.AUTHENTICATED
    event(
        log,
        "auth",
        session=session.id,
        ip=session.ip,
        user=account.address,
        result="ok",
    )
    # RFC 3501 §6.2.3: the OK may carry the post-login capabilities.
    return "Logged in", "CAPABILITY " + " ".join(session.capabilities())


def _text(value: bytes, argument: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise bad(f"{argument} is not valid UTF-8") from None


async def login(
    session: Session, command: Command, response: Response
) -> tuple[str, str]:
    args: Login = command.args
    return await _complete_login(
        session, _text(args.username, "user name"), _text(args.password, "password")
    )


def _decode_plain(data: bytes) -> tuple[str, str]:
    """Split an RFC 4616 PLAIN message into (authcid, password)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise bad("Invalid base64 in AUTHENTICATE data") from None
    parts = raw.split(b"\x00")
    if len(parts) != 3 or any(len(part) > _MAX_PLAIN_FIELD for part in parts):
        raise bad("Invalid PLAIN message")
    authzid, authcid, password = parts
    if not authcid or not password:
        raise bad("Invalid PLAIN message")
    if authzid and authzid != authcid:
        # Acting as another user is not supported.
        raise no(
            "Authorization identity must be empty or equal the user name",
            errors.AUTHENTICATIONFAILED,
        )
    return _text(authcid, "user name"), _text(password, "password")


async def authenticate(
    session: Session, command: Command, response: Response
) -> tuple[str, str]:
    args: Authenticate = command.args
    if args.mechanism != "PLAIN":
        raise no(
            f"Unsupported authentication mechanism {args.mechanism}", errors.CANNOT
        )
    if not session.plaintext_auth_allowed:
        raise no("Use STARTTLS or IMAPS before authenticating", errors.PRIVACYREQUIRED)
    data = args.initial_response
    if data is None:
        # RFC 3501 §6.2.2: an empty continuation request, then one line.
        await session.send_continuation(b"+ \r\n")
        try:
            data = await session.reader.read_line(4 * _MAX_PLAIN_FIELD)
        except LineTooLong:
            raise bad("AUTHENTICATE data too long") from None
    if data == b"*":
        raise bad("Authentication cancelled")
    if data == b"=":
        # RFC 4959 §3: "=" is an empty initial response, which PLAIN cannot use.
        raise bad("Invalid PLAIN message")
    username, password = _decode_plain(data)
    return await _complete_login(session, username, password)


async def id_command(session: Session, command: Command, response: Response) -> None:
    args: Id = command.args
    if args.parameters:
        event(
            log,
            "client_id",
            session=session.id,
            client=args.parameters.get("name"),
            version=args.parameters.get("version"),
        )
    fields = b" ".join(
        string(key) + b" " + nstring(value) for key, value in SERVER_ID.items()
    )
    response.untagged(b"ID (" + fields + b")")


async def enable(session: Session, command: Command, response: Response) -> None:
    args: Enable = command.args
    enabled = []
    for name in args.capabilities:
        # RFC 5161 §3.1: unknown names are ignored, and the ENABLED response
        # lists only what this command newly enabled.
        spelling = ENABLEABLE.get(name)
        if spelling is None or name in session.enabled:
            continue
        session.enabled.add(name)
        enabled.append(spelling)
    response.untagged(" ".join(["ENABLED", *enabled]))


async def namespace(session: Session, command: Command, response: Response) -> None:
    # RFC 2342 §5: one personal namespace with "/" as the delimiter.
    response.untagged('NAMESPACE (("" "/")) NIL NIL')
