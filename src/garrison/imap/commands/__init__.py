"""IMAP command handlers, grouped by concern, and the command table.

Importing this package fills `garrison.imap.session.COMMANDS`. Each row
names the handler and the states the command is valid in (RFC 3501 §6).
"""

from __future__ import annotations

from garrison.imap.commands import (
    append,
    compress,
    fetch,
    idle,
    listing,
    mailboxes,
    messages,
    quota,
    search,
    select,
    session,
    sort,
)
from garrison.imap.session import (
    ANY_STATE,
    AUTHENTICATED,
    COMMANDS,
    NOT_AUTHENTICATED,
    SELECTED,
    CommandSpec,
)

COMMANDS.update(
    {
        # RFC 3501 §6.1: any state.
        "CAPABILITY": CommandSpec(session.capability, ANY_STATE),
        "NOOP": CommandSpec(session.noop, ANY_STATE),
        "LOGOUT": CommandSpec(session.logout, ANY_STATE),
        "ID": CommandSpec(session.id_command, ANY_STATE),
        # RFC 3501 §6.2: not authenticated state.
        "STARTTLS": CommandSpec(session.starttls, NOT_AUTHENTICATED),
        "LOGIN": CommandSpec(session.login, NOT_AUTHENTICATED),
        "AUTHENTICATE": CommandSpec(session.authenticate, NOT_AUTHENTICATED),
        # RFC 3501 §6.3: authenticated state (and selected).
        "ENABLE": CommandSpec(session.enable, AUTHENTICATED),
        "NAMESPACE": CommandSpec(session.namespace, AUTHENTICATED),
        "SELECT": CommandSpec(select.select, AUTHENTICATED),
        "EXAMINE": CommandSpec(select.examine, AUTHENTICATED),
        "CREATE": CommandSpec(mailboxes.create, AUTHENTICATED),
        "DELETE": CommandSpec(mailboxes.delete, AUTHENTICATED),
        "RENAME": CommandSpec(mailboxes.rename, AUTHENTICATED),
        "SUBSCRIBE": CommandSpec(mailboxes.subscribe, AUTHENTICATED),
        "UNSUBSCRIBE": CommandSpec(mailboxes.unsubscribe, AUTHENTICATED),
        "LIST": CommandSpec(listing.list_command, AUTHENTICATED),
        "LSUB": CommandSpec(mailboxes.lsub, AUTHENTICATED),
        "STATUS": CommandSpec(mailboxes.status, AUTHENTICATED),
        "APPEND": CommandSpec(append.append, AUTHENTICATED),
        "IDLE": CommandSpec(idle.idle, AUTHENTICATED),
        # RFC 9208 §4 and RFC 4978 §3.
        "GETQUOTA": CommandSpec(quota.getquota, AUTHENTICATED),
        "GETQUOTAROOT": CommandSpec(quota.getquotaroot, AUTHENTICATED),
        "SETQUOTA": CommandSpec(quota.setquota, AUTHENTICATED),
        "COMPRESS": CommandSpec(compress.compress, AUTHENTICATED),
        # RFC 3501 §6.4: selected state. RFC 3501 §7.4.1: no EXPUNGE
        # responses after FETCH, STORE and SEARCH; their UID forms allow them.
        "CHECK": CommandSpec(messages.check, SELECTED),
        "CLOSE": CommandSpec(messages.close, SELECTED),
        "UNSELECT": CommandSpec(messages.unselect, SELECTED),
        "EXPUNGE": CommandSpec(messages.expunge, SELECTED),
        "SEARCH": CommandSpec(search.search, SELECTED, expunge_ok=False),
        "FETCH": CommandSpec(fetch.fetch, SELECTED, expunge_ok=False),
        "STORE": CommandSpec(messages.store, SELECTED, expunge_ok=False),
        "COPY": CommandSpec(messages.copy, SELECTED),
        "MOVE": CommandSpec(messages.move, SELECTED),
        # RFC 5256 §3: like SEARCH, the sequence-number forms allow no EXPUNGE.
        "SORT": CommandSpec(sort.sort, SELECTED, expunge_ok=False),
        "THREAD": CommandSpec(sort.thread, SELECTED, expunge_ok=False),
    }
)
