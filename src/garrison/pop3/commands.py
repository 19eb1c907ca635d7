"""The POP3 command table: handler, allowed states and arguments per keyword.

The session's dispatcher enforces the table, so handlers do not check the
state or the number of arguments themselves. States follow RFC 1939 §3,
with CAPA (RFC 2449 §5), STLS (RFC 2595 §4) and AUTH (RFC 5034 §4) added.
APOP is not offered: it needs the plaintext password on the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from garrison.pop3 import authorization, transaction
from garrison.pop3.parser import Command, CommandSyntaxError
from garrison.pop3.state import State

if TYPE_CHECKING:
    from garrison.pop3.session import Session

Handler = Callable[["Session", Command], Awaitable[None]]

_AUTHORIZATION = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})
_BOTH = frozenset({State.AUTHORIZATION, State.TRANSACTION})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """How one command is dispatched.

    `min_args` and `max_args` bound the space-separated arguments. A command
    with `raw_argument` takes the whole rest of the line as one argument,
    which must not be empty; its `min_args`/`max_args` are not used.
    """

    handler: Handler
    states: frozenset[State]
    min_args: int = 0
    max_args: int = 0
    raw_argument: bool = False


async def _quit(session: Session, command: Command) -> None:
    if session.state is State.TRANSACTION:
        await transaction.quit(session, command)
    else:
        await authorization.quit(session, command)


COMMANDS: dict[str, CommandSpec] = {
    "CAPA": CommandSpec(authorization.capa, _BOTH),
    "QUIT": CommandSpec(_quit, _BOTH),
    "STLS": CommandSpec(authorization.stls, _AUTHORIZATION),
    "USER": CommandSpec(authorization.user, _AUTHORIZATION, 1, 1),
    # RFC 1939 §7: PASS has one argument, and spaces may be part of it.
    "PASS": CommandSpec(authorization.pass_, _AUTHORIZATION, raw_argument=True),
    # RFC 5034 §4: AUTH mechanism [initial-response]; a bare AUTH lists the
    # mechanisms, as RFC 1734 clients such as Outlook expect.
    "AUTH": CommandSpec(authorization.auth, _AUTHORIZATION, 0, 2),
    "STAT": CommandSpec(transaction.stat, _TRANSACTION),
    "LIST": CommandSpec(transaction.list_, _TRANSACTION, 0, 1),
    "RETR": CommandSpec(transaction.retr, _TRANSACTION, 1, 1),
    "TOP": CommandSpec(transaction.top, _TRANSACTION, 2, 2),
    "DELE": CommandSpec(transaction.dele, _TRANSACTION, 1, 1),
    "RSET": CommandSpec(transaction.rset, _TRANSACTION),
    "NOOP": CommandSpec(transaction.noop, _TRANSACTION),
    "UIDL": CommandSpec(transaction.uidl, _TRANSACTION, 0, 1),
}


def check_arguments(spec: CommandSpec, command: Command) -> None:
    """Raise CommandSyntaxError unless `command` has the arguments `spec` takes."""
    if spec.raw_argument:
        if not command.raw_args:
            raise CommandSyntaxError("an argument is required")
        return

    count = len(command.args)
    if count < spec.min_args:
        raise CommandSyntaxError(f"expected at least {spec.min_args} arguments")
    if count > spec.max_args:
        if spec.max_args == 0:
            raise CommandSyntaxError("no arguments are allowed")
        raise CommandSyntaxError(f"expected at most {spec.max_args} arguments")
