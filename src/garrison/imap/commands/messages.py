"""Handlers that change messages: APPEND, CHECK, CLOSE, UNSELECT, EXPUNGE,
UID EXPUNGE, STORE, COPY and MOVE, with their UID forms.

RFC 3501 §6.3.11 and §6.4, RFC 4315 (UIDPLUS: APPENDUID, COPYUID, UID
EXPUNGE), RFC 6851 (MOVE), RFC 3691 (UNSELECT), RFC 7162 (STORE
UNCHANGEDSINCE, MODSEQ in STORE responses, VANISHED after QRESYNC). Every
change is durable in the store before its tagged OK is sent. COPY and MOVE
into or out of Junk, and STORE of $Junk or $NotJunk (RFC 5788), queue
anti-spam training that runs after the reply (garrison.filters.spam.training).
"""

from __future__ import annotations

from garrison.filters.spam.training import learn_after_copy, learn_after_store
from garrison.imap import errors
from garrison.imap.command import (
    Command,
    CopyArgs,
    Expunge,
    Store,
)
from garrison.imap.encoder import Response, flag_list
from garrison.imap.errors import bad, no
from garrison.imap.selected import InvalidSequenceNumber, SelectedMailbox
from garrison.imap.session import Session
from garrison.imap.types import format_uid_set
from garrison.store import MessageRecord, QuotaExceeded, StoreError


def selected_mailbox(session: Session) -> SelectedMailbox:
    assert session.selected is not None
    return session.selected


def resolve(selected: SelectedMailbox, command: Command, sequence_set):
    try:
        return selected.resolve(sequence_set, command.uid)
    except InvalidSequenceNumber as exc:
        raise bad(str(exc)) from None


def _require_writable(selected: SelectedMailbox) -> None:
    if selected.readonly:
        # RFC 3501 §6.3.2: EXAMINE selects read-only.
        raise no("Mailbox is read-only (selected with EXAMINE)", errors.READ_ONLY)


async def check(session: Session, command: Command, response: Response) -> None:
    # RFC 3501 §6.4.1: every change is already durable; nothing to do.
    return None


async def close(session: Session, command: Command, response: Response) -> None:
    selected = selected_mailbox(session)
    if not selected.readonly:
        # RFC 3501 §6.4.2: CLOSE expunges silently.
        await session.store.expunge(selected.mailbox_id)
    session.unselect()


async def unselect(session: Session, command: Command, response: Response) -> None:
    # RFC 3691: like CLOSE, without the expunge.
    session.unselect()


async def expunge(session: Session, command: Command, response: Response) -> None:
    selected = selected_mailbox(session)
    _require_writable(selected)
    args: Expunge | None = command.args
    uids = None
    if command.uid:
        assert args is not None and args.sequence_set is not None
        # RFC 4315 §2.1: only the \Deleted messages among the given UIDs.
        uids = [uid for _, uid in selected.resolve_uid_set(args.sequence_set)]
        if not uids:
            return None
    gone = await session.store.expunge(selected.mailbox_id, uids)
    selected.changed = True
    selected.remove_expunged(gone, response, session.update_style)
    if session.condstore:
        # RFC 7162 §3.2.10: the tagged OK carries the new HIGHESTMODSEQ.
        modseq = session.store.mailbox_by_id(selected.mailbox_id).highestmodseq
        return f"{command.name} completed", f"HIGHESTMODSEQ {modseq}"
    return None


async def store(session: Session, command: Command, response: Response):
    selected = selected_mailbox(session)
    args: Store = command.args
    _require_writable(selected)
    if args.unchanged_since is not None:
        # RFC 7162 §3.1: UNCHANGEDSINCE enables CONDSTORE.
        session.enabled.add("CONDSTORE")
    targets = resolve(selected, command, args.sequence_set)
    if not targets:
        return None
    modified: list[int] = []
    changed = await session.store.store_flags(
        selected.mailbox_id,
        [uid for _, uid in targets],
        args.operation,
        args.flags,
        unchanged_since=args.unchanged_since,
        modified=modified,
    )
    selected.note_flags(changed)
    selected.changed = True
    assert session.account is not None
    learn_after_store(
        session.store, session.account.address, selected.mailbox_id, args.flags, changed
    )
    if session.condstore:
        _report_store_modseq(session, command, targets, changed, modified, response)
    elif not args.silent:
        _report_store_flags(selected, command, targets, response)
    if modified:
        # RFC 7162 §3.1.3: MODIFIED lists the messages that failed the
        # UNCHANGEDSINCE test, as sequence numbers or, for UID STORE, UIDs.
        failed = set(modified)
        numbers = [uid if command.uid else seq for seq, uid in targets if uid in failed]
        return "Conditional STORE failed", f"MODIFIED {format_uid_set(numbers)}"
    return None


def _report_store_modseq(
    session: Session,
    command: Command,
    targets: list,
    changed: list[MessageRecord],
    modified: list[int],
    response: Response,
) -> None:
    """Send the STORE's FETCH responses with MODSEQ (RFC 7162 §3.1.3).

    Without .SILENT every message that passed the UNCHANGEDSINCE test is
    reported with FLAGS and MODSEQ; with .SILENT only the changed messages,
    with MODSEQ alone.
    """
    selected = selected_mailbox(session)
    args: Store = command.args
    failed = set(modified)
    if args.silent:
        current = {record.uid: record for record in changed}
    else:
        wanted = [uid for _, uid in targets if uid not in failed]
        current = {
            record.uid: record
            for record in session.store.messages(selected.mailbox_id, wanted)
        }
    for seq, uid in targets:
        record = current.get(uid)
        if record is None or uid in failed or uid in selected.pending_expunges:
            continue
        items = []
        if command.uid:
            items.append(b"UID %d" % uid)
        if not args.silent:
            items.append(b"FLAGS " + flag_list(selected.with_recent(uid, record.flags)))
        items.append(b"MODSEQ (%d)" % record.modseq)
        response.untagged(b"%d FETCH (" % seq + b" ".join(items) + b")")


def _report_store_flags(
    selected: SelectedMailbox, command: Command, targets: list, response: Response
) -> None:
    # RFC 3501 §6.4.6: report the new flags of every message in the set.
    for seq, uid in targets:
        flags = selected.flags.get(uid)
        if flags is None or uid in selected.pending_expunges:
            continue
        flags = selected.with_recent(uid, flags)
        if command.uid:
            response.untagged(
                b"%d FETCH (UID %d FLAGS %s)" % (seq, uid, flag_list(flags))
            )
        else:
            response.untagged(b"%d FETCH (FLAGS %s)" % (seq, flag_list(flags)))
    return None


async def _copy_or_move(
    session: Session, command: Command, response: Response, move: bool
):
    selected = selected_mailbox(session)
    args: CopyArgs = command.args
    if move:
        _require_writable(selected)
    assert session.account is not None
    target = session.store.get_mailbox(session.account.id, args.mailbox)
    if target is None:
        # RFC 3501 §6.4.7: TRYCREATE when the target does not exist.
        raise no(f"Mailbox {args.mailbox} does not exist", errors.TRYCREATE)
    targets = resolve(selected, command, args.sequence_set)
    uids = [uid for _, uid in targets if uid not in selected.pending_expunges]
    if not uids:
        return f"{command.name} completed, no messages"
    try:
        if move:
            if target.id == selected.mailbox_id:
                raise no("Cannot move messages to the selected mailbox", errors.CANNOT)
            pairs = await session.store.move(selected.mailbox_id, uids, target.id)
        else:
            pairs = await session.store.copy(selected.mailbox_id, uids, target.id)
    except QuotaExceeded as exc:
        # RFC 9208 §5.1: COPY over the quota fails with OVERQUOTA.
        raise no(str(exc), errors.OVERQUOTA) from None
    except StoreError as exc:
        raise no(str(exc), errors.CANNOT) from None
    if not pairs:
        # Every message was expunged by another session meanwhile.
        raise no("Messages were expunged meanwhile", errors.EXPUNGEISSUED)
    # RFC 4315 §3: COPYUID <uidvalidity> <source UIDs> <destination UIDs>.
    code = (
        f"COPYUID {target.uidvalidity} {format_uid_set([p[0] for p in pairs])} "
        f"{format_uid_set([p[1] for p in pairs])}"
    )
    if target.id == selected.mailbox_id:
        selected.changed = True
    learn_after_copy(
        session.store, session.account.address, selected.mailbox.special_use,
        target.special_use, target.id, pairs,
    )
    if not move:
        return "COPY completed", code
    # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
    response.status(None, errors.OK, "Moved", code)
    selected.changed = True
    selected.remove_expunged([p[0] for p in pairs], response, session.update_style)
    return "MOVE completed"


async def copy(session: Session, command: Command, response: Response):
    return await _copy_or_move(session, command, response, move=False)


async def move(session: Session, command: Command, response: Response):
    return await _copy_or_move(session, command, response, move=True)
