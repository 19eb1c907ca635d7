"""SORT, THREAD and their UID forms (RFC 5256).

The search program selects the messages as SEARCH does. The sort keys come
from the analysis stored at delivery (`store.message_metas` reads the
uncached ones in one query), so neither command reads message bytes unless
a search key needs them. Ordering and threading are in `garrison.imap.sorting`.
"""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Command, SearchKey, Sort, Thread
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
from garrison.imap.sorting import (
    SortMessage,
    format_threads,
    sort_messages,
    thread_messages,
)
from garrison.message import MessageAnalysis
from garrison.message.addresses import parse_address_list
from garrison.store import MessageRecord


def _first_mailbox(formatted: str) -> str:
    """Return the first address's mailbox from analyses stored without it."""
    for address in parse_address_list(formatted.encode("utf-8")):
        if address.host is not None and address.mailbox is not None:
            return address.mailbox.decode("utf-8", "replace")
    return ""


def _sort_message(
    number: int, position: int, record: MessageRecord, meta: MessageAnalysis
) -> SortMessage:
    references = tuple(meta.references)
    if not references and meta.in_reply_to:
        # RFC 5256 §5 step 1A: without References, the first message id of
        # In-Reply-To is the parent.
        start = meta.in_reply_to.find("<")
        end = meta.in_reply_to.find(">", start)
        if start >= 0 and end > start:
            references = (meta.in_reply_to[start : end + 1],)
    return SortMessage(
        number=number,
        position=position,
        arrival=record.internaldate,
        # RFC 5256 §2.2: without a valid Date header, INTERNALDATE is used.
        sent=meta.sent_date or record.internaldate,
        size=record.size,
        subject=meta.subject,
        from_mailbox=(
            meta.from_mailbox
            if meta.from_mailbox is not None
            else _first_mailbox(meta.from_)
        ),
        to_mailbox=(
            meta.to_mailbox if meta.to_mailbox is not None else _first_mailbox(meta.to)
        ),
        cc_mailbox=(
            meta.cc_mailbox if meta.cc_mailbox is not None else _first_mailbox(meta.cc)
        ),
        message_id=meta.message_id,
        references=references,
    )


def _matching(
    session: Session, command: Command, charset: str, key: SearchKey
) -> list[SortMessage]:
    selected = selected_mailbox(session)
    largest_uid = selected.uids[-1] if selected.uids else 0
    try:
        predicate = compile_search(key, charset, selected.exists, largest_uid)
    except UnsupportedCharset:
        # RFC 5256 §3: an unknown charset gets NO [BADCHARSET].
        raise no(f"Unsupported charset {charset}", errors.BADCHARSET) from None
    except SearchError as exc:
        raise bad(str(exc)) from None
    store = session.store
    found: list[tuple[int, MessageRecord]] = []
    for record in store.messages(selected.mailbox_id):
        seq = selected.seq_of(record.uid)
        if seq is None:
            # Delivered after the last EXISTS: the client does not know it yet.
            continue
        if predicate(Candidate(seq, record, store)):
            found.append((seq, record))
    metas = store.message_metas(record.blob_id for _, record in found)
    return [
        _sort_message(
            record.uid if command.uid else seq, seq, record, metas[record.blob_id]
        )
        for seq, record in found
    ]


async def sort(session: Session, command: Command, response: Response) -> None:
    args: Sort = command.args
    messages = _matching(session, command, args.charset, args.key)
    ordered = sort_messages(messages, args.criteria)
    response.untagged("SORT" + "".join(f" {message.number}" for message in ordered))


async def thread(session: Session, command: Command, response: Response) -> None:
    args: Thread = command.args
    messages = _matching(session, command, args.charset, args.key)
    roots = thread_messages(messages, args.algorithm)
    # RFC 5256 §4: "THREAD" alone when no message matches.
    text = format_threads(roots)
    response.untagged("THREAD " + text if text else "THREAD")
