"""Handlers for the mailbox commands (RFC 3501 §6.3).

CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
(with RFC 6154 SPECIAL-USE attributes and RFC 3348 CHILDREN attributes),
LSUB and STATUS. Names arrive decoded from modified UTF-7, or from UTF-8
after ENABLE IMAP4rev2, and leave in the same form; the hierarchy delimiter
is "/".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from garrison.imap import errors, utf7
from garrison.imap.command import Command, ListArgs, MailboxArg, Rename, Status
from garrison.imap.encoder import Response
from garrison.imap.encoder import mailbox as encode_mailbox
from garrison.imap.errors import no
from garrison.imap.session import Session
from garrison.store import (
    DELIMITER,
    INBOX,
    Mailbox,
    MailboxExists,
    MailboxNotFound,
    StoreError,
)


# RFC 6154 §2: the special-use attributes, by lower-cased name.
SPECIAL_USE_ATTRIBUTES = {
    name.lower(): name
    for name in (
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        "\\Sent",
        "\\Trash",
    )
}


def _account_id(session: Session) -> int:
    assert session.account is not None
    return session.account.id


def _store_error(exc: StoreError) -> errors.IMAPError:
    text = str(exc)
    if not text.isascii():
        # Response text is 7-bit (RFC 3501 §9 TEXT-CHAR); show mailbox names
        # the way the client sent them, in modified UTF-7.
        text = utf7.encode(text)
    if isinstance(exc, MailboxNotFound):
        return no(text, errors.NONEXISTENT)
    if isinstance(exc, MailboxExists):
        return no(text, errors.ALREADYEXISTS)
    return no(text, errors.CANNOT)


def _special_use(requested: tuple[str, ...]) -> str | None:
    """Return the one special-use attribute of CREATE ... (USE (...)), or None."""
    if not requested:
        return None
    # RFC 6154 §3: USEATTR when an attribute is unknown or the combination
    # is not supported; this store keeps one attribute per mailbox.
    if len(requested) > 1:
        raise no("Only one special-use attribute per mailbox", errors.USEATTR)
    attribute = SPECIAL_USE_ATTRIBUTES.get(requested[0].lower())
    if attribute is None:
        raise no(f"Unknown special-use attribute {requested[0]}", errors.USEATTR)
    return attribute


async def create(session: Session, command: Command, response: Response):
    args: MailboxArg = command.args
    # RFC 3501 §6.3.3: a trailing delimiter only declares the intent to
    # create children.
    name = args.mailbox.rstrip(DELIMITER)
    if name == INBOX:
        raise no("INBOX already exists", errors.ALREADYEXISTS)
    special_use = _special_use(args.special_use)
    account_id = _account_id(session)
    try:
        # RFC 3501 §6.3.3: create the missing superior names too.
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent and session.store.get_mailbox(account_id, parent) is None:
                await session.store.create_mailbox(account_id, parent)
        created = await session.store.create_mailbox(account_id, name, special_use)
    except StoreError as exc:
        raise _store_error(exc) from None
    # RFC 8474 §4.1: the tagged OK carries the new MAILBOXID.
    return "CREATE completed", f"MAILBOXID ({mailbox_id(created)})"


async def delete(session: Session, command: Command, response: Response) -> None:
    args: MailboxArg = command.args
    if args.mailbox == INBOX:
        raise no("INBOX cannot be deleted", errors.CANNOT)
    if session.selected is not None and session.selected.mailbox.name == args.mailbox:
        raise no("Cannot delete the selected mailbox; UNSELECT first", errors.INUSE)
    try:
        await session.store.delete_mailbox(_account_id(session), args.mailbox)
    except StoreError as exc:
        raise _store_error(exc) from None


async def rename(session: Session, command: Command, response: Response) -> None:
    args: Rename = command.args
    try:
        await session.store.rename_mailbox(
            _account_id(session), args.old, args.new.rstrip(DELIMITER)
        )
    except StoreError as exc:
        raise _store_error(exc) from None


async def subscribe(session: Session, command: Command, response: Response) -> None:
    args: MailboxArg = command.args
    await session.store.set_subscribed(_account_id(session), args.mailbox, True)


async def unsubscribe(session: Session, command: Command, response: Response) -> None:
    args: MailboxArg = command.args
    await session.store.set_subscribed(_account_id(session), args.mailbox, False)


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """Compile an RFC 3501 §6.3.8 LIST pattern: "*" matches anything, "%" one level."""
    full = reference + pattern
    # RFC 3501 §5.1: INBOX is case-insensitive and stored upper-case.
    if full[:5].upper() == INBOX and full[5:6] in ("", DELIMITER, "*", "%"):
        full = INBOX + full[5:]
    parts = []
    for char in full:
        if char == "*":
            parts.append(".*")
        elif char == "%":
            parts.append("[^" + re.escape(DELIMITER) + "]*")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _matches(regex: re.Pattern[str], name: str) -> bool:
    return regex.match(name) is not None


def _list_line(
    command_name: str, attributes: list[str], name: str, utf8: bool = False
) -> bytes:
    return (
        command_name.encode("ascii")
        + b" ("
        + " ".join(attributes).encode("ascii")
        + b') "/" '
        + encode_mailbox(name, utf8)
    )


async def list_mailboxes(
    session: Session, command: Command, response: Response
) -> None:
    args: ListArgs = command.args
    if args.pattern == "":
        # RFC 3501 §6.3.8: an empty pattern requests the delimiter and root.
        root = (
            args.reference.split(DELIMITER, 1)[0] + DELIMITER
            if DELIMITER in args.reference
            else ""
        )
        response.untagged(
            b'LIST (\\Noselect) "/" ' + encode_mailbox(root, session.utf8_mailboxes)
        )
        return
    regex = pattern_regex(args.reference, args.pattern)
    mailboxes = session.store.list_mailboxes(_account_id(session))
    existing = {mailbox.name: mailbox for mailbox in mailboxes}
    names = set(existing)
    # Parents that exist only as part of a child's name are listed \Noselect.
    for name in list(existing):
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts)):
            names.add(DELIMITER.join(parts[:depth]))
    for name in sorted(names, key=lambda n: (n != INBOX, n)):
        if not _matches(regex, name):
            continue
        has_children = any(other.startswith(name + DELIMITER) for other in names)
        attributes = ["\\HasChildren" if has_children else "\\HasNoChildren"]
        mailbox = existing.get(name)
        if mailbox is None:
            # RFC 9051 §7.3.1: \NonExistent (which implies \Noselect) marks a
            # name that exists only as a parent.
            attributes.insert(0, "\\NonExistent" if session.rev2 else "\\Noselect")
        elif mailbox.special_use:
            # RFC 6154 §2: the special-use attribute in LIST.
            attributes.append(mailbox.special_use)
        response.untagged(
            _list_line("LIST", attributes, name, session.utf8_mailboxes)
        )


async def lsub(session: Session, command: Command, response: Response) -> None:
    args: ListArgs = command.args
    regex = pattern_regex(args.reference, args.pattern)
    account_id = _account_id(session)
    subscribed = session.store.subscriptions(account_id)
    existing = {mailbox.name for mailbox in session.store.list_mailboxes(account_id)}
    for name in sorted(subscribed, key=lambda n: (n != INBOX, n)):
        if _matches(regex, name):
            attributes = [] if name in existing else ["\\Noselect"]
            response.untagged(
                _list_line("LSUB", attributes, name, session.utf8_mailboxes)
            )


async def status(session: Session, command: Command, response: Response) -> None:
    args: Status = command.args
    mailbox = session.store.get_mailbox(_account_id(session), args.mailbox)
    if mailbox is None:
        raise no(f"Mailbox {args.mailbox} does not exist", errors.NONEXISTENT)
    response.untagged(status_response(session, mailbox, args.items))


def mailbox_id(mailbox: Mailbox) -> str:
    """Return the RFC 8474 MAILBOXID: stable across RENAME, never reused.

    The UIDVALIDITY is unique per mailbox in this store and the row id
    keeps two mailboxes apart even if UIDVALIDITY values were copied.
    """
    return f"M{mailbox.id}-{mailbox.uidvalidity}"


def status_response(session: Session, mailbox: Mailbox, items: Sequence[str]) -> bytes:
    """Return the STATUS response data for the items, in the order requested."""
    counters = session.store.status(mailbox.id)
    if "HIGHESTMODSEQ" in items:
        # RFC 7162 §3.1: STATUS HIGHESTMODSEQ enables CONDSTORE.
        session.enabled.add("CONDSTORE")
    values: dict[str, object] = {
        "MESSAGES": counters.messages,
        "RECENT": counters.recent,
        "UIDNEXT": counters.uidnext,
        "UIDVALIDITY": counters.uidvalidity,
        "UNSEEN": counters.unseen,
        "HIGHESTMODSEQ": counters.highestmodseq,
        # RFC 8438 §2: the total size of the messages in octets.
        "SIZE": counters.size,
        "MAILBOXID": f"({mailbox_id(mailbox)})",
    }
    if "DELETED" in items or "DELETED-STORAGE" in items:
        # RFC 9208 §4.2: messages with \Deleted, and their storage in KiB.
        deleted, deleted_bytes = session.store.deleted_usage(mailbox.id)
        values["DELETED"] = deleted
        values["DELETED-STORAGE"] = (deleted_bytes + 1023) // 1024
    text = " ".join(f"{item} {values[item]}" for item in items)
    return (
        b"STATUS "
        + encode_mailbox(mailbox.name, session.utf8_mailboxes)
        + b" (" + text.encode() + b")"
    )
