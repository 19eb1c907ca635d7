"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8)."""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Command, Search
from garrison.imap.commands.messages import selected_mailbox
from garrison.imap.encoder import Response
from garrison.imap.errors import bad, no
from garrison.imap.search import (
    Candidate,
    SearchError,
    UnsupportedCharset,
    compile_search,
)
from garrison.imap.session import Session


async def search(session: Session, command: Command, response: Response) -> None:
    selected = selected_mailbox(session)
    args: Search = command.args
    largest_uid = selected.uids[-1] if selected.uids else 0
    try:
        predicate = compile_search(args.key, args.charset, selected.exists, largest_uid)
    except UnsupportedCharset:
        # RFC 3501 §6.4.4: NO with the supported charsets.
        raise no(f"Unsupported charset {args.charset}", errors.BADCHARSET) from None
    except SearchError as exc:
        raise bad(str(exc)) from None
    records = session.store.messages(selected.mailbox_id)
    matches = []
    for record in records:
        seq = selected.seq_of(record.uid)
        if seq is None:
            # Delivered after the last EXISTS: the client does not know it yet.
            continue
        if predicate(Candidate(seq, record, session.store)):
            matches.append(record.uid if command.uid else seq)
    response.untagged("SEARCH" + "".join(f" {number}" for number in matches))
