"""Handlers for the TRANSACTION state and QUIT into the UPDATE state.

STAT, LIST, RETR, DELE, NOOP, RSET (RFC 1939 §5), TOP and UIDL (RFC 1939
§7) work on the session's maildrop snapshot. Only QUIT writes to the store
(RFC 1939 §6): it marks the messages sent by RETR as \\Seen and expunges the
messages marked by DELE. Dovecot does the same: its `client_update_mails`
in `src/pop3/pop3-commands.c` sets \\Seen at QUIT for messages sent by RETR,
not by TOP.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, BinaryIO

from garrison.observability.log import event, format_event
from garrison.pop3 import replies
from garrison.pop3.errors import POP3Error, SessionAborted
from garrison.pop3.maildrop import Maildrop, MaildropMessage
from garrison.pop3.multiline import MultilineEncoder, TopCutter
from garrison.pop3.parser import Command, parse_line_count, parse_message_number
from garrison.pop3.state import State

if TYPE_CHECKING:
    from garrison.pop3.session import Session

logger = logging.getLogger("garrison.pop3")

# Bytes read from a blob and written to the client per step of RETR and TOP.
CHUNK_SIZE = 64 * 1024

SEEN = frozenset({"\\Seen"})
DELETED = frozenset({"\\Deleted"})


def _maildrop(session: Session) -> Maildrop:
    # The command table admits these handlers only in the TRANSACTION state,
    # which login enters after setting the maildrop.
    assert session.maildrop is not None
    return session.maildrop


async def stat(session: Session, command: Command) -> None:
    maildrop = _maildrop(session)
    session.send(replies.STAT.format(count=maildrop.count, octets=maildrop.octets))


async def list_(session: Session, command: Command) -> None:
    maildrop = _maildrop(session)
    if command.args:
        message = maildrop.get(parse_message_number(command.args[0]))
        session.send(replies.LIST_ONE.format(number=message.number, size=message.size))
        return

    lines = [f"{message.number} {message.size}" for message in maildrop.messages()]
    first = replies.LIST_FOLLOWS.format(count=maildrop.count, octets=maildrop.octets)
    session.send_multiline(first, lines)


async def uidl(session: Session, command: Command) -> None:
    maildrop = _maildrop(session)
    if command.args:
        message = maildrop.get(parse_message_number(command.args[0]))
        session.send(
            replies.UIDL_ONE.format(number=message.number, uid=message.unique_id)
        )
        return

    lines = [f"{message.number} {message.unique_id}" for message in maildrop.messages()]
    session.send_multiline(replies.UIDL_FOLLOWS, lines)


async def retr(session: Session, command: Command) -> None:
    maildrop = _maildrop(session)
    message = maildrop.get(parse_message_number(command.args[0]))
    with _open_message(session, message) as blob:
        session.send(replies.RETR_FOLLOWS.format(size=message.size))
        await _send_message(session, message, blob, body_lines=None)
    maildrop.mark_retrieved(message.number)
    session.counters.retr += 1


async def top(session: Session, command: Command) -> None:
    maildrop = _maildrop(session)
    message = maildrop.get(parse_message_number(command.args[0]))
    body_lines = parse_line_count(command.args[1])
    with _open_message(session, message) as blob:
        session.send(replies.TOP_FOLLOWS)
        await _send_message(session, message, blob, body_lines=body_lines)
    session.counters.top += 1


async def dele(session: Session, command: Command) -> None:
    number = parse_message_number(command.args[0])
    _maildrop(session).delete(number)
    session.counters.dele += 1
    session.send(replies.DELE_DONE.format(number=number))


async def rset(session: Session, command: Command) -> None:
    maildrop = _maildrop(session)
    maildrop.reset()
    session.send(replies.RSET_DONE.format(count=maildrop.count, octets=maildrop.octets))


async def noop(session: Session, command: Command) -> None:
    session.send(replies.NOOP)


async def quit(session: Session, command: Command) -> None:
    """QUIT in the TRANSACTION state: apply the marks, then close.

    RFC 1939 §6: the session enters the UPDATE state, removes the messages
    marked as deleted and closes the connection. When the store fails, the
    reply is -ERR and the connection closes all the same.
    """
    maildrop = _maildrop(session)
    session.state = State.UPDATE
    session.closed = True
    session.close_reason = "QUIT"

    seen = maildrop.seen_uids()
    deleted = maildrop.deleted_uids()
    store = session.server.store
    try:
        if seen:
            await store.store_flags(maildrop.mailbox_id, seen, "add", SEEN)
        expunged: list[int] = []
        if deleted:
            # NOTE: flagging and expunging are two store transactions. If the
            # expunge fails, the messages stay in the INBOX flagged \Deleted.
            await store.store_flags(maildrop.mailbox_id, deleted, "add", DELETED)
            expunged = await store.expunge(maildrop.mailbox_id, deleted)
    except Exception:
        logger.exception(
            format_event(
                "update_error",
                {"session": session.id, "mailbox": maildrop.mailbox_id},
            )
        )
        raise POP3Error(replies.UPDATE_FAILED, close=True) from None

    event(
        logger,
        "update",
        session=session.id,
        mailbox=maildrop.mailbox_id,
        seen=len(seen),
        deleted=len(deleted),
        expunged=len(expunged),
    )
    hostname = session.server.hostname
    if deleted:
        session.send(replies.BYE_DELETED.format(hostname=hostname, count=len(deleted)))
    else:
        session.send(replies.BYE.format(hostname=hostname))


def _open_message(session: Session, message: MaildropMessage) -> BinaryIO:
    """Open the blob of a maildrop message that still exists in the store.

    Raises POP3Error with MESSAGE_EXPUNGED when another session removed the
    message since login, and MESSAGE_UNREADABLE when the blob cannot be
    opened.
    """
    maildrop = _maildrop(session)
    store = session.server.store
    if not store.messages(maildrop.mailbox_id, [message.uid]):
        raise POP3Error(replies.MESSAGE_EXPUNGED.format(number=message.number))
    try:
        return store.blobs.open(message.blob_id)
    except OSError as error:
        event(
            logger,
            "blob_error",
            level=logging.ERROR,
            session=session.id,
            blob=message.blob_id,
            error=error,
        )
        raise POP3Error(
            replies.MESSAGE_UNREADABLE.format(number=message.number)
        ) from None


async def _send_message(
    session: Session,
    message: MaildropMessage,
    blob: BinaryIO,
    body_lines: int | None,
) -> None:
    """Stream a message as a multi-line reply body, all of it or for TOP.

    Memory use is one chunk, whatever the message size. Raises
    SessionAborted when the blob fails to read midway, because the reply
    cannot be finished.
    """
    encoder = MultilineEncoder()
    cutter = TopCutter(body_lines) if body_lines is not None else None
    while True:
        try:
            chunk = blob.read(CHUNK_SIZE)
        except OSError as error:
            event(
                logger,
                "blob_error",
                level=logging.ERROR,
                session=session.id,
                blob=message.blob_id,
                error=error,
            )
            raise SessionAborted("message blob failed to read") from None
        if not chunk:
            break

        if cutter is not None:
            chunk = cutter.cut(chunk)
        session.write(encoder.encode(chunk))
        await session.writer.drain()
        if cutter is not None and cutter.done:
            break
    session.write(encoder.finish())
