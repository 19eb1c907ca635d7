"""APPEND with MULTIAPPEND (RFC 3502), BINARY literal8 (RFC 3516) and the
UTF8 data item of UTF8=ACCEPT (RFC 6855 §4).

Every message is written to a blob and analysed first. Then one store
transaction adds them all, so a MULTIAPPEND adds every message or none, as
RFC 3502 requires. The quota is checked inside that transaction, so a
command that would exceed it gets NO [OVERQUOTA] (RFC 9208) and adds
nothing.
"""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Append, AppendMessage, Command, SpooledLiteral
from garrison.imap.encoder import Response
from garrison.imap.errors import bad, no
from garrison.imap.session import Session
from garrison.imap.types import format_uid_set
from garrison.message import MessageAnalysis, analyse
from garrison.store import BlobRef, MailStore, QuotaExceeded, StoreError


async def _commit_blob(
    store: MailStore, message: AppendMessage
) -> tuple[BlobRef, MessageAnalysis]:
    literal = message.message
    if isinstance(literal, SpooledLiteral):
        writer = store.blobs.create()
        try:
            for chunk in literal.chunks():
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        blob = await writer.commit()
        return blob, store.analyse_blob(blob)
    analysis = analyse(literal)
    return await store.blobs.put(literal), analysis


async def append(session: Session, command: Command, response: Response):
    args: Append = command.args
    assert session.account is not None
    messages = args.messages
    for message in messages:
        if message.utf8 and not session.utf8_mailboxes:
            # RFC 6855 §4: the UTF8 data item needs ENABLE UTF8=ACCEPT first.
            raise bad("APPEND UTF8 requires ENABLE UTF8=ACCEPT")
        if len(message.message) == 0:
            raise no("Empty message", errors.CANNOT)
    store = session.store
    mailbox = store.get_mailbox(session.account.id, args.mailbox)
    if mailbox is None:
        # RFC 3501 §6.3.11: TRYCREATE when the target mailbox does not exist.
        raise no(f"Mailbox {args.mailbox} does not exist", errors.TRYCREATE)
    items = []
    for message in messages:
        blob, analysis = await _commit_blob(store, message)
        items.append((blob, analysis, message.flags, message.internaldate))
    # NOTE: when the transaction below fails, the blobs written above stay in
    # the blob store although no message refers to them.
    try:
        uidvalidity, uids = await store.append_blobs(mailbox.id, items)
    except QuotaExceeded as exc:
        raise no(str(exc), errors.OVERQUOTA) from None
    except StoreError as exc:
        raise no(str(exc), errors.CANNOT) from None
    if session.selected is not None and session.selected.mailbox_id == mailbox.id:
        session.selected.changed = True
    # RFC 4315 §3: APPENDUID <uidvalidity> <uid-set>, one UID per message.
    return "APPEND completed", f"APPENDUID {uidvalidity} {format_uid_set(uids)}"
