"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8) with their extensions.

ESEARCH (RFC 4731): `SEARCH RETURN (MIN MAX ALL COUNT)` gets one ESEARCH
response; after ENABLE IMAP4rev2 every SEARCH does, with ALL when no
RETURN is given (RFC 9051 §6.4.4). SEARCHRES (RFC 5182): RETURN (SAVE)
keeps the result for "$". CONDSTORE (RFC 7162 §3.1.5): the MODSEQ key
enables CONDSTORE and adds the highest MODSEQ of the matches.
"""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Command, Search, SearchKey
from garrison.imap.commands.messages import selected_mailbox
from garrison.imap.encoder import Response, quoted
from garrison.imap.errors import bad, no
from garrison.imap.search import (
    Candidate,
    SearchError,
    SearchScope,
    UnsupportedCharset,
    compile_search,
)
from garrison.imap.selected import SelectedMailbox
from garrison.imap.session import Session
from garrison.imap.types import format_uid_set
from garrison.store import MessageRecord


def _uses_modseq(key: SearchKey) -> bool:
    return key.op == "MODSEQ" or any(_uses_modseq(child) for child in key.children)


def _saved_result(options: tuple[str, ...], matches: list[MessageRecord]) -> list[int]:
    """Return the UIDs that RETURN (SAVE) keeps (RFC 5182 §2.4).

    With MIN or MAX but neither ALL nor COUNT, only those messages are
    saved; otherwise every match is.
    """
    if not matches or "ALL" in options or "COUNT" in options:
        return [record.uid for record in matches]
    if "MIN" in options or "MAX" in options:
        saved = set()
        if "MIN" in options:
            saved.add(matches[0].uid)
        if "MAX" in options:
            saved.add(matches[-1].uid)
        return sorted(saved)
    return [record.uid for record in matches]


def _find(
    session: Session, selected: SelectedMailbox, command: Command
) -> list[MessageRecord]:
    args: Search = command.args
    largest_uid = selected.uids[-1] if selected.uids else 0
    scope = SearchScope(
        session.store,
        selected.mailbox_id,
        frozenset(selected.saved_uids),
        frozenset(selected.recent),
    )
    try:
        predicate = compile_search(
            args.key, args.charset, selected.exists, largest_uid, scope
        )
    except UnsupportedCharset:
        # RFC 3501 §6.4.4: NO with the supported charsets.
        raise no(f"Unsupported charset {args.charset}", errors.BADCHARSET) from None
    except SearchError as exc:
        raise bad(str(exc)) from None
    matches = []
    for record in session.store.messages(selected.mailbox_id):
        seq = selected.seq_of(record.uid)
        if seq is None:
            # Delivered after the last EXISTS: the client does not know it yet.
            continue
        if predicate(Candidate(seq, record, session.store)):
            matches.append(record)
    return matches


async def search(session: Session, command: Command, response: Response) -> None:
    selected = selected_mailbox(session)
    args: Search = command.args
    modseq_key = _uses_modseq(args.key)
    if modseq_key:
        # RFC 7162 §3.1.5: SEARCH MODSEQ enables CONDSTORE.
        session.enabled.add("CONDSTORE")
    options = args.return_options
    try:
        matches = _find(session, selected, command)
    except errors.IMAPError:
        if options is not None and "SAVE" in options:
            # RFC 5182 §2.1: a failed SEARCH ... RETURN (SAVE) empties "$".
            selected.saved_uids = []
        raise
    numbers = [
        record.uid if command.uid else selected.seq_of(record.uid) or 0
        for record in matches
    ]
    highest = max((record.modseq for record in matches), default=0)

    if options is None and not session.rev2:
        line = "SEARCH" + "".join(f" {number}" for number in numbers)
        if modseq_key and matches:
            # RFC 7162 §3.1.5: the highest MODSEQ of the matches.
            line += f" (MODSEQ {highest})"
        response.untagged(line)
        return None
    if options is None or not options:
        # RFC 4731 §3.1 and RFC 9051 §6.4.4: no options means ALL.
        options = ("ALL",)
    if "SAVE" in options:
        selected.saved_uids = _saved_result(options, matches)
        if options == ("SAVE",):
            # RFC 5182 §2.4: SAVE alone sends no ESEARCH response.
            return None
    response.untagged(_esearch(command, options, numbers, modseq_key, highest))
    return None


def _esearch(
    command: Command,
    options: tuple[str, ...],
    numbers: list[int],
    modseq_key: bool,
    highest: int,
) -> bytes:
    """Build the RFC 4731 §3.1 ESEARCH response; MIN, MAX and ALL only with matches."""
    line = b"ESEARCH (TAG " + quoted(command.tag.encode("ascii")) + b")"
    if command.uid:
        line += b" UID"
    if numbers and "MIN" in options:
        line += b" MIN %d" % numbers[0]
    if numbers and "MAX" in options:
        line += b" MAX %d" % numbers[-1]
    if "COUNT" in options:
        line += b" COUNT %d" % len(numbers)
    if numbers and "ALL" in options:
        line += b" ALL " + format_uid_set(numbers).encode("ascii")
    if modseq_key and numbers:
        # RFC 7162 §3.1.5: ESEARCH carries MODSEQ as a result item.
        line += b" MODSEQ %d" % highest
    return line
