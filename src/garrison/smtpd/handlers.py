"""Handlers for the envelope and session commands (RFC 5321 §4.1.1).

Each handler takes the session and the command's argument text, queues
its replies with `session.reply` or `session.reject`, and returns nothing.
The dispatcher has already checked the command-order state and the TLS
requirement from the command table, so handlers check only what is
specific to them. DATA and BDAT live in `receiver`.
"""

from __future__ import annotations

import logging

from garrison.delivery import DeliveryError, Recipient
from garrison.observability.log import event
from garrison.smtp import extensions, replies
from garrison.smtp.replies import Reply
from garrison.smtp.parser import (
    SMTPSyntaxError,
    parse_domain_argument,
    parse_mail_argument,
    parse_rcpt_argument,
)
from garrison.smtpd import policy, screening
from garrison.smtpd.auth import auth_allowed
from garrison.smtpd.session import Session
from garrison.smtpd.trace import new_queue_id

log = logging.getLogger("garrison.smtpd")


async def handle_ehlo(session: Session, argument: str) -> None:
    """EHLO: record the client name, reset the transaction, list extensions."""
    await _greet(session, argument, esmtp=True)


async def handle_helo(session: Session, argument: str) -> None:
    """HELO: like EHLO, but the session uses no service extensions."""
    await _greet(session, argument, esmtp=False)


async def _greet(session: Session, argument: str, esmtp: bool) -> None:
    try:
        helo = parse_domain_argument(argument)
    except SMTPSyntaxError as exc:
        session.reject("helo", exc.reply)
        return

    # RFC 5321 §4.1.4: EHLO or HELO in the middle of a session resets it
    # as RSET does.
    session.transaction.reset()
    session.connection.helo = helo
    session.connection.esmtp = esmtp
    if esmtp:
        session.io.send(
            session.server.ehlo_reply(session.connection.tls, auth_allowed(session))
        )
    else:
        session.io.send(session.server.helo_reply)


async def handle_mail(session: Session, argument: str) -> None:
    """MAIL: start a transaction after checking the sender and its parameters."""
    try:
        parsed = parse_mail_argument(argument)
    except SMTPSyntaxError as exc:
        session.reject("mail", exc.reply)
        return

    parameters: dict[str, str] = {}
    smtputf8 = False
    declared_size = None
    for keyword, value in parsed.parameters.items():
        # Service extension parameters exist only in sessions opened with
        # EHLO; after HELO the client speaks plain SMTP.
        if not session.connection.esmtp:
            session.reject("mail", replies.UNSUPPORTED_PARAMETER)
            return
        if keyword == extensions.SIZE:
            # RFC 1870 §6: SIZE=n with n the estimated message size in octets.
            if value is None or not value.isdigit() or len(value) > 20:
                session.reject("mail", replies.PARAMETER_SYNTAX)
                return
            declared_size = int(value)
            if declared_size > session.server.settings.smtp.max_message_size:
                session.reject("mail", replies.MESSAGE_TOO_BIG)
                return
        elif keyword == "BODY":
            body = (value or "").upper()
            if body == extensions.BODY_BINARYMIME:
                # RFC 3030 §3: BINARYMIME needs the extension, not advertised.
                session.reject("mail", replies.BINARYMIME_NOT_SUPPORTED)
                return
            # RFC 6152 §2: BODY=7BIT or BODY=8BITMIME.
            if body not in (extensions.BODY_7BIT, extensions.BODY_8BITMIME):
                session.reject("mail", replies.PARAMETER_SYNTAX)
                return
            value = body
        elif keyword == "RET":
            # RFC 3461 §4.3: RET=FULL or RET=HDRS.
            if (value or "").upper() not in ("FULL", "HDRS"):
                session.reject("mail", replies.PARAMETER_SYNTAX)
                return
            value = value.upper()  # type: ignore[union-attr]
        elif keyword == "ENVID":
            # RFC 3461 §4.4: ENVID is xtext of at most 100 characters.
            if not value or len(value) > 100:
                session.reject("mail", replies.PARAMETER_SYNTAX)
                return
        elif keyword == extensions.AUTH and session.server.listener.auth:
            # RFC 4954 §5: AUTH=mailbox or AUTH=<> names the original
            # submitter. Garrison trusts no other server's claim, so it acts
            # as if AUTH=<> was given: the value is checked and dropped.
            if not value:
                session.reject("mail", replies.PARAMETER_SYNTAX)
                return
            continue
        elif keyword == extensions.SMTPUTF8:
            # RFC 6531 §3.4: the SMTPUTF8 parameter has no value.
            if value is not None:
                session.reject("mail", replies.PARAMETER_SYNTAX)
                return
            smtputf8 = True
        else:
            # RFC 5321 §4.1.1.11: an unrecognized parameter gets 555.
            session.reject("mail", replies.UNSUPPORTED_PARAMETER)
            return
        parameters[keyword] = value or ""

    sender = parsed.sender.address if parsed.sender else ""
    refusal = policy.check_mail(session, sender) or screening.check_sender(
        session, sender
    )
    if refusal is not None:
        session.reject("mail", refusal)
        return

    transaction = session.transaction
    transaction.reset()
    transaction.queue_id = new_queue_id()
    transaction.has_sender = True
    transaction.sender = parsed.sender.address if parsed.sender else ""
    transaction.parameters = parameters
    transaction.smtputf8 = smtputf8
    transaction.declared_size = declared_size
    session.reply(replies.SENDER_OK)


async def handle_rcpt(session: Session, argument: str) -> None:
    """RCPT: accept a local recipient, or a remote one that relay policy allows."""
    transaction = session.transaction
    try:
        parsed = parse_rcpt_argument(argument, utf8=transaction.smtputf8)
    except SMTPSyntaxError as exc:
        session.reject("rcpt", exc.reply)
        return

    address = parsed.recipient.address
    params = _dsn_parameters(parsed.parameters, session.connection.esmtp)
    if isinstance(params, replies.Reply):
        session.reject("rcpt", params, address)
        return

    # RFC 5321 §4.5.3.1.8 and §4.5.3.1.10: past the recipient limit, 452.
    if len(transaction.recipients) >= session.server.settings.smtp.max_recipients:
        session.reject("rcpt", replies.TOO_MANY_RECIPIENTS, address)
        return

    refusal = policy.check_recipient_limit(session)
    if refusal is not None:
        session.reject("rcpt", refusal, address)
        return

    resolution = session.server.directory.resolve_recipient(address)
    if resolution.kind == "not_local":
        # Relaying: allowed only by the listener's relay modes.
        refusal = policy.check_relay(session)
        if refusal is not None:
            session.reject("rcpt", refusal, address)
            return
        transaction.recipients.append(Recipient(address, [], params))
        session.reply(replies.RECIPIENT_OK)
        return
    if resolution.kind != "local":
        session.reject("rcpt", replies.USER_UNKNOWN, address)
        return

    accounts, refusal = await screening.screen_recipient(
        session, address, resolution.accounts
    )
    if refusal is not None:
        session.reject("rcpt", refusal, address)
        return

    try:
        # RFC 3463 §3.3: a mailbox already over quota is "mailbox full" (X.2.2).
        session.server.delivery.check_recipient(accounts)
    except DeliveryError as exc:
        session.reject("rcpt", Reply(exc.code, exc.enhanced, exc.text), address)
        return

    # A recipient that is also forwarded elsewhere goes whole through the
    # outbound queue, which stores the local copies and forwards with SRS.
    # So does one with NOTIFY=SUCCESS (RFC 3461) when a queue runs,
    # because the queue sends the "delivered" report after storing it.
    wants_success = "SUCCESS" in params.get("NOTIFY", "").split(",")
    queued = resolution.forwards or (
        wants_success and session.server.delivery.outbound is not None
    )
    # NOTE: a queued recipient is expanded again by the queue, so accounts
    # that screening dropped from it still get their copy.
    accounts = [] if queued else accounts
    transaction.recipients.append(Recipient(address, accounts, params))
    session.reply(replies.RECIPIENT_OK)


_NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def _dsn_parameters(
    parameters: dict[str, str | None], esmtp: bool
) -> dict[str, str] | replies.Reply:
    """Check the RCPT parameters (RFC 3461 NOTIFY and ORCPT); return them or a reply."""
    checked: dict[str, str] = {}
    for keyword, value in parameters.items():
        if not esmtp or keyword not in ("NOTIFY", "ORCPT"):
            # RFC 5321 §4.1.1.11: an unrecognized parameter gets 555.
            return replies.UNSUPPORTED_PARAMETER
        if not value:
            return replies.PARAMETER_SYNTAX
        if keyword == "NOTIFY":
            # RFC 3461 §4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY.
            items = value.upper().split(",")
            if items != ["NEVER"] and not (
                set(items) <= _NOTIFY_VALUES and len(set(items)) == len(items)
            ):
                return replies.PARAMETER_SYNTAX
            value = ",".join(items)
        elif ";" not in value:
            # RFC 3461 §4.2: ORCPT is addr-type ";" xtext.
            return replies.PARAMETER_SYNTAX
        checked[keyword] = value
    return checked


async def handle_rset(session: Session, argument: str) -> None:
    """RSET: abort the transaction (RFC 5321 §4.1.1.5)."""
    if argument:
        session.reply(replies.SYNTAX_ERROR)
        return
    session.transaction.reset()
    session.reply(replies.RESET_OK)


async def handle_noop(session: Session, argument: str) -> None:
    """NOOP: reply 250 and ignore any argument (RFC 5321 §4.1.1.9)."""
    session.reply(replies.OK)


async def handle_quit(session: Session, argument: str) -> None:
    """QUIT: reply 221 and end the session (RFC 5321 §4.1.1.10)."""
    session.io.send(session.server.closing_reply)
    session.closing = True


async def handle_vrfy(session: Session, argument: str) -> None:
    """VRFY: reply 252 without revealing whether the address exists."""
    if not argument:
        session.reply(replies.SYNTAX_ERROR)
        return
    session.reply(replies.CANNOT_VERIFY)


async def handle_help(session: Session, argument: str) -> None:
    """HELP: list the commands (RFC 5321 §4.1.1.8)."""
    session.reply(replies.HELP)


async def handle_starttls(session: Session, argument: str) -> None:
    """STARTTLS: switch the connection to TLS and forget the client (RFC 3207)."""
    if not session.server.offers_starttls:
        session.reply(replies.NOT_IMPLEMENTED)
        return
    if session.connection.tls:
        session.reply(replies.ALREADY_TLS)
        return
    if argument:
        session.reply(replies.SYNTAX_ERROR)
        return

    io = session.io
    if io.has_pending_input():
        # Bytes sent behind STARTTLS would be read as if they came through
        # TLS (the STARTTLS command injection attack, CVE-2011-0411).  Drop
        # them and end the session rather than start TLS.
        dropped = io.discard_pending_input()
        event(
            log,
            "starttls_pipelined",
            logging.WARNING,
            session=session.connection.session_id,
            bytes=dropped,
        )
        session.reject("starttls", replies.STARTTLS_PIPELINED)
        session.closing = True
        return

    # No await between writing 220 and starting TLS, so that no further
    # plaintext (or the ClientHello) can land in the StreamReader buffer.
    io.write_now(replies.READY_FOR_TLS.encode())
    try:
        await io.writer.start_tls(
            session.server.tls_context,
            ssl_handshake_timeout=session.server.handshake_timeout,
        )
    except (OSError, TimeoutError, ConnectionError) as exc:
        event(
            log,
            "tls_failed",
            logging.WARNING,
            session=session.connection.session_id,
            error=exc,
        )
        session.closing = True
        session.io.abandon_output()
        return

    session.transaction.reset()
    session.connection.forget_client()
    session.server.record_tls(session)
