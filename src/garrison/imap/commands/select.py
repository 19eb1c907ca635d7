"""SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 9051 §6.3.2-3).

With the CONDSTORE select parameter or once CONDSTORE is enabled, the
responses include HIGHESTMODSEQ (RFC 7162 §3.1.2). With QRESYNC enabled,
the QRESYNC parameter makes the server report what changed since the
client's last sync: VANISHED (EARLIER) for expunged UIDs, then FETCH for
messages whose MODSEQ is newer (RFC 7162 §3.2.5). The store keeps every
expunged UID in `vanished`, so VANISHED (EARLIER) is exact and the
sequence match data is checked for syntax but not needed.

After ENABLE IMAP4rev2, SELECT sends no RECENT and no UNSEEN code and adds
the mailbox's LIST response (RFC 9051 §6.3.2).
"""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Command, QResyncParams, Select
from garrison.imap.commands.mailboxes import mailbox_id
from garrison.imap.encoder import Response, flag_list
from garrison.imap.encoder import mailbox as encode_mailbox
from garrison.imap.errors import bad, no
from garrison.imap.selected import SelectedMailbox
from garrison.imap.session import Session
from garrison.imap.types import format_uid_set
from garrison.store import MessageRecord

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
# RFC 3501 §7.1: "\*" means clients may create new keywords.
PERMANENT_FLAGS = "PERMANENTFLAGS (" + " ".join(SYSTEM_FLAGS) + " \\*)"


async def _select(
    session: Session, command: Command, response: Response, readonly: bool
):
    args: Select = command.args
    if args.qresync is not None and not session.qresync:
        # RFC 7162 §3.2.5: the QRESYNC parameter needs ENABLE QRESYNC first.
        raise bad("QRESYNC parameter used before ENABLE QRESYNC")
    was_selected = session.selected is not None
    # RFC 3501 §6.3.1: a failed SELECT leaves no mailbox selected.
    session.unselect()
    if was_selected and (session.qresync or session.rev2):
        # RFC 7162 §3.2.11 and RFC 9051 §6.3.2: [CLOSED] marks where the
        # responses of the old mailbox end.
        response.status(None, errors.OK, "Previous mailbox is now closed", "CLOSED")
    if args.condstore:
        # RFC 7162 §3.1.8: SELECT (CONDSTORE) enables CONDSTORE.
        session.enabled.add("CONDSTORE")
    assert session.account is not None
    store = session.store
    mailbox = store.get_mailbox(session.account.id, args.mailbox)
    if mailbox is None:
        raise no(f"Mailbox {args.mailbox} does not exist", errors.NONEXISTENT)
    # The MODSEQ is read before the messages, so a change committed in
    # between is reported again by the first refresh rather than lost.
    records = store.messages(mailbox.id)
    selected = SelectedMailbox(store, mailbox, records, mailbox.highestmodseq, readonly)
    if readonly:
        # RFC 3501 §6.3.2: EXAMINE shows \Recent but does not claim it.
        selected.take_recent(mailbox.recent_uid)
    else:
        selected.take_recent(await store.claim_recent(mailbox.id))
    session.select(selected)

    keywords = sorted(
        {flag for record in records for flag in record.flags} - set(SYSTEM_FLAGS)
    )
    response.untagged(b"FLAGS " + flag_list([*SYSTEM_FLAGS, *keywords]))
    response.untagged(b"%d EXISTS" % len(records))
    if session.rev2:
        # RFC 9051 §6.3.2: the LIST response gives the canonical name.
        response.untagged(
            b'LIST () "/" ' + encode_mailbox(mailbox.name, session.utf8_mailboxes)
        )
    else:
        response.untagged(b"%d RECENT" % selected.recent_count)
        first_unseen = next(
            (
                seq
                for seq, record in enumerate(records, 1)
                if "\\Seen" not in record.flags
            ),
            None,
        )
        if first_unseen is not None:
            response.status(
                None, errors.OK, "First unseen message", f"UNSEEN {first_unseen}"
            )
    response.status(None, errors.OK, "UIDs valid", f"UIDVALIDITY {mailbox.uidvalidity}")
    response.status(None, errors.OK, "Predicted next UID", f"UIDNEXT {mailbox.uidnext}")
    # RFC 8474 §4.2: SELECT and EXAMINE report the MAILBOXID.
    response.status(None, errors.OK, "Ok", f"MAILBOXID ({mailbox_id(mailbox)})")
    if session.condstore:
        # RFC 7162 §3.1.2.
        response.status(
            None,
            errors.OK,
            "Highest mod-sequence",
            f"HIGHESTMODSEQ {mailbox.highestmodseq}",
        )
    if readonly:
        response.status(
            None, errors.OK, "No permanent flags permitted", "PERMANENTFLAGS ()"
        )
    else:
        response.status(None, errors.OK, "Flags permitted", PERMANENT_FLAGS)
    if args.qresync is not None and args.qresync.uidvalidity == mailbox.uidvalidity:
        _report_resync(session, selected, records, args.qresync, response)
    if readonly:
        return "EXAMINE completed", errors.READ_ONLY
    return "SELECT completed", errors.READ_WRITE


def _report_resync(
    session: Session,
    selected: SelectedMailbox,
    records: list[MessageRecord],
    params: QResyncParams,
    response: Response,
) -> None:
    """Send VANISHED (EARLIER) and FETCH for changes after the client's MODSEQ."""
    largest = records[-1].uid if records else 0
    vanished = session.store.vanished_since(selected.mailbox_id, params.modseq)
    if params.known_uids is not None:
        known = params.known_uids
        vanished = [uid for uid in vanished if known.contains(uid, largest)]
    existing = set(selected.uids)
    vanished = [uid for uid in vanished if uid not in existing]
    if vanished:
        # RFC 7162 §3.2.5.1: VANISHED (EARLIER) comes before the FETCHes.
        response.untagged("VANISHED (EARLIER) " + format_uid_set(sorted(vanished)))
    for seq, record in enumerate(records, 1):
        if record.modseq > params.modseq:
            response.untagged(
                b"%d FETCH (UID %d FLAGS %s MODSEQ (%d))"
                % (seq, record.uid, flag_list(record.flags), record.modseq)
            )


async def select(session: Session, command: Command, response: Response):
    return await _select(session, command, response, readonly=False)


async def examine(session: Session, command: Command, response: Response):
    return await _select(session, command, response, readonly=True)
