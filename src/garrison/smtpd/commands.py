"""The SMTP command table: which handler runs each verb, and when.

Each `CommandSpec` names its handler, the session states it is allowed
in (with the reply for the others), whether it is allowed before TLS
on a listener that requires TLS, and whether it ends a pipeline group
(RFC 2920 §3.1), after which the replies are flushed at once. The
dispatcher in `server` enforces the table, so handlers do not repeat
these checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from garrison.smtp import replies
from garrison.smtp.replies import Reply
from garrison.smtpd import auth, handlers, receiver
from garrison.smtpd.session import Session, SessionState

Handler = Callable[[Session, str], Awaitable[None]]

ANY_STATE = frozenset(SessionState)
# RFC 5321 §4.1.4: MAIL needs EHLO or HELO first and no open transaction.
_MAIL_ERRORS = {
    SessionState.CONNECTED: replies.NEED_EHLO,
    SessionState.MAIL: replies.NESTED_MAIL,
    SessionState.RCPT: replies.NESTED_MAIL,
    SessionState.CHUNKING: replies.NESTED_MAIL,
}
_RCPT_ERRORS = {
    SessionState.CONNECTED: replies.NEED_EHLO,
    SessionState.READY: replies.NEED_MAIL,
    SessionState.CHUNKING: replies.BAD_SEQUENCE,
}
_DATA_ERRORS = {
    SessionState.CONNECTED: replies.NEED_EHLO,
    SessionState.READY: replies.NEED_MAIL,
    SessionState.MAIL: replies.NEED_RCPT,
    # RFC 3030 §2: DATA and BDAT must not be mixed in one transaction.
    SessionState.CHUNKING: replies.DATA_AFTER_BDAT,
}
# RFC 4954 §4: AUTH is not permitted during a mail transaction.
_AUTH_ERRORS = {
    SessionState.CONNECTED: replies.NEED_EHLO,
    SessionState.MAIL: replies.BAD_SEQUENCE,
    SessionState.RCPT: replies.BAD_SEQUENCE,
    SessionState.CHUNKING: replies.BAD_SEQUENCE,
}
_STARTTLS_ERRORS = {
    SessionState.CONNECTED: replies.NEED_EHLO,
    SessionState.MAIL: replies.BAD_SEQUENCE,
    SessionState.RCPT: replies.BAD_SEQUENCE,
    SessionState.CHUNKING: replies.BAD_SEQUENCE,
}


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """How the dispatcher treats one command verb."""

    handler: Handler
    states: frozenset[SessionState]
    state_errors: dict[SessionState, Reply] = field(default_factory=dict)
    before_tls: bool = True
    ends_group: bool = False

    def state_error(self, state: SessionState) -> Reply:
        """Return the reply for this command in a state it is not allowed in."""
        return self.state_errors.get(state, replies.BAD_SEQUENCE)


COMMANDS: dict[str, CommandSpec] = {
    # RFC 2920 §3.1: EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP end a group.
    "EHLO": CommandSpec(handlers.handle_ehlo, ANY_STATE, ends_group=True),
    "HELO": CommandSpec(handlers.handle_helo, ANY_STATE, ends_group=True),
    "MAIL": CommandSpec(
        handlers.handle_mail,
        frozenset({SessionState.READY}),
        _MAIL_ERRORS,
        before_tls=False,
    ),
    "RCPT": CommandSpec(
        handlers.handle_rcpt,
        frozenset({SessionState.MAIL, SessionState.RCPT}),
        _RCPT_ERRORS,
        before_tls=False,
    ),
    "DATA": CommandSpec(
        receiver.handle_data,
        frozenset({SessionState.RCPT}),
        _DATA_ERRORS,
        before_tls=False,
        ends_group=True,
    ),
    # RFC 3030 §2: a rejected BDAT still consumes its chunk, so the handler
    # runs in every state and checks the order after reading the size.
    "BDAT": CommandSpec(receiver.handle_bdat, ANY_STATE, before_tls=False),
    "RSET": CommandSpec(handlers.handle_rset, ANY_STATE),
    "NOOP": CommandSpec(handlers.handle_noop, ANY_STATE, ends_group=True),
    "QUIT": CommandSpec(handlers.handle_quit, ANY_STATE, ends_group=True),
    "VRFY": CommandSpec(
        handlers.handle_vrfy, ANY_STATE, before_tls=False, ends_group=True
    ),
    "HELP": CommandSpec(handlers.handle_help, ANY_STATE),
    # RFC 3207 §4: the client waits for 220 before the handshake, so
    # nothing may follow STARTTLS in the same group.
    # AUTH is allowed before TLS so that its handler can answer 538 5.7.11
    # (RFC 4954 §6) instead of the generic 530; it never accepts a password
    # there unless plaintext AUTH from loopback is allowed.
    "AUTH": CommandSpec(
        auth.handle_auth,
        frozenset({SessionState.READY}),
        _AUTH_ERRORS,
        ends_group=True,
    ),
    "STARTTLS": CommandSpec(
        handlers.handle_starttls,
        frozenset({SessionState.READY}),
        _STARTTLS_ERRORS,
        ends_group=True,
    ),
}
