"""FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2).

The records of all requested messages come from one store query. ENVELOPE,
BODYSTRUCTURE and BODY were computed at delivery (`store.message_meta`),
and section octets come from `garrison.message.section_bytes` over the
stored part offsets; a header-only section reads only the header bytes of
the blob. Each message's response is built in the command's buffer.

RFC 3501 §6.4.5: BODY[...] and RFC822 / RFC822.TEXT set \\Seen unless the
mailbox is read-only; the new flags are then included in the response.

RFC 7162: the MODSEQ item and the CHANGEDSINCE modifier enable CONDSTORE;
CHANGEDSINCE limits the response to messages changed after the given
MODSEQ, and with VANISHED (UID FETCH after ENABLE QRESYNC) the expunged
UIDs of the set come first as VANISHED (EARLIER).
"""

from __future__ import annotations

from collections import OrderedDict

from garrison.imap import errors
from garrison.imap.command import Command, Fetch, FetchAtt
from garrison.imap.commands.fetch_ext import binary_item, object_id_item
from garrison.imap.commands.messages import resolve, selected_mailbox
from garrison.imap.encoder import Response, date_time, flag_list, literal
from garrison.imap.errors import bad
from garrison.imap.selected import SelectedMailbox
from garrison.imap.session import Session
from garrison.imap.types import format_uid_set
from garrison.message import section_bytes
from garrison.store import MailStore, MessageRecord

_SEEN = "\\Seen"
_HEADER_ONLY_KINDS = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT")

# Header sections of recently fetched messages. Blobs are content-addressed
# and never change, so an entry is valid for as long as it is kept. Clients
# fetch the same header fields of a whole mailbox at every login, and this
# saves a file read and a header parse per message.
_HEADER_CACHE: OrderedDict[tuple, bytes] = OrderedDict()
_HEADER_CACHE_ENTRIES = 20000


def _sets_seen(att: FetchAtt) -> bool:
    # RFC 3516 §4.2: BINARY without .PEEK sets \Seen as BODY does.
    if att.name in ("BODY", "BINARY") and att.section is not None:
        return not att.peek
    return att.name in ("RFC822", "RFC822.TEXT")


class _Message:
    """Lazy access to one message's blob and analysis during a FETCH."""

    __slots__ = ("store", "record", "_meta", "_data", "_header")

    def __init__(self, store: MailStore, record: MessageRecord) -> None:
        self.store = store
        self.record = record
        self._meta = None
        self._data: bytes | None = None
        self._header: bytes | None = None

    @property
    def meta(self):
        if self._meta is None:
            self._meta = self.store.message_meta(self.record.blob_id)
        return self._meta

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.store.blobs.read(self.record.blob_id)
        return self._data

    @property
    def header(self) -> bytes:
        if self._data is not None:
            return self._data[: self.meta.header_size]
        if self._header is None:
            self._header = self.store.blobs.read_prefix(
                self.record.blob_id, self.meta.header_size
            )
        return self._header


def _section_data(message: _Message, att: FetchAtt) -> bytes:
    section = att.section
    assert section is not None
    kind = section.kind or None
    if not section.path and kind in _HEADER_ONLY_KINDS:
        key = (message.record.blob_id, kind, section.fields)
        cached = _HEADER_CACHE.get(key)
        if cached is not None:
            _HEADER_CACHE.move_to_end(key)
            return cached
        data = message.header
        parts = {"hs": 0, "bs": len(data), "be": len(data), "ct": ""}
        result = section_bytes(data, parts, (), kind, list(section.fields))
        _HEADER_CACHE[key] = result
        if len(_HEADER_CACHE) > _HEADER_CACHE_ENTRIES:
            _HEADER_CACHE.popitem(last=False)
        return result
    data = message.data
    parts = message.meta.parts
    return section_bytes(data, parts, section.path, kind, list(section.fields))


def _partial(data: bytes, att: FetchAtt) -> tuple[bytes, bytes]:
    if att.partial is None:
        return data, b""
    start, length = att.partial
    # RFC 3501 §6.4.5: only the origin is echoed, "<0>".
    return data[start : start + length], b"<%d>" % start


def _fetch_item(message: _Message, att: FetchAtt, flags: frozenset[str]) -> bytes:
    name = att.name
    record = message.record
    if name == "UID":
        return b"UID %d" % record.uid
    if name == "FLAGS":
        return b"FLAGS " + flag_list(flags)
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + date_time(record.internaldate)
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % record.size
    if name == "MODSEQ":
        return b"MODSEQ (%d)" % record.modseq
    if name in ("EMAILID", "THREADID"):
        return object_id_item(record, name)
    if name in ("BINARY", "BINARY.SIZE"):
        return binary_item(message, att)
    if name == "ENVELOPE":
        return b"ENVELOPE " + message.meta.envelope
    if name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + message.meta.bodystructure
    if name == "BODY" and att.section is None:
        return b"BODY " + message.meta.body
    if name == "RFC822":
        return b"RFC822 " + literal(message.data)
    if name == "RFC822.HEADER":
        return b"RFC822.HEADER " + literal(message.header)
    if name == "RFC822.TEXT":
        return b"RFC822.TEXT " + literal(message.data[message.meta.header_size :])
    assert att.section is not None
    data, origin = _partial(_section_data(message, att), att)
    return (
        b"BODY["
        + att.section.spec.encode("ascii")
        + b"]"
        + origin
        + b" "
        + literal(data)
    )


def _report_vanished(
    session: Session, selected: SelectedMailbox, args: Fetch, response: Response
) -> None:
    """Send VANISHED (EARLIER) for expunged UIDs of the set (RFC 7162 §3.2.6)."""
    assert args.changed_since is not None
    largest = selected.uids[-1] if selected.uids else 0
    gone = [
        uid
        for uid in session.store.vanished_since(selected.mailbox_id, args.changed_since)
        if args.sequence_set.contains(uid, largest) and selected.seq_of(uid) is None
    ]
    if gone:
        response.untagged("VANISHED (EARLIER) " + format_uid_set(gone))


async def fetch(session: Session, command: Command, response: Response) -> None:
    selected = selected_mailbox(session)
    args: Fetch = command.args
    if args.vanished and not (command.uid and session.qresync):
        # RFC 7162 §3.2.6: VANISHED only in UID FETCH after ENABLE QRESYNC.
        raise bad("VANISHED requires UID FETCH and ENABLE QRESYNC")
    atts = list(args.atts)
    wants_modseq = any(att.name == "MODSEQ" for att in atts)
    if wants_modseq or args.changed_since is not None:
        # RFC 7162 §3.1: MODSEQ and CHANGEDSINCE enable CONDSTORE.
        session.enabled.add("CONDSTORE")
    if args.vanished:
        _report_vanished(session, selected, args, response)
    targets = resolve(selected, command, args.sequence_set)
    if not targets:
        return None
    # RFC 3501 §6.4.8: UID FETCH always returns the UID.
    if command.uid and not any(att.name == "UID" for att in atts):
        atts.insert(0, FetchAtt("UID"))
    if args.changed_since is not None and not wants_modseq:
        # RFC 7162 §3.1.4.1: CHANGEDSINCE implies the MODSEQ item.
        atts.append(FetchAtt("MODSEQ"))
        wants_modseq = True
    store = session.store
    records = {
        record.uid: record
        for record in store.messages(selected.mailbox_id, [uid for _, uid in targets])
    }
    if args.changed_since is not None:
        changed_since = args.changed_since
        records = {
            uid: record
            for uid, record in records.items()
            if record.modseq > changed_since
        }
        targets = [(seq, uid) for seq, uid in targets if uid in records]

    updated: dict[int, MessageRecord] = {}
    if not selected.readonly and any(_sets_seen(att) for att in atts):
        unseen = [uid for uid, record in records.items() if _SEEN not in record.flags]
        if unseen:
            changed = await store.store_flags(
                selected.mailbox_id, unseen, "add", [_SEEN]
            )
            selected.note_flags(changed)
            selected.changed = True
            updated = {record.uid: record for record in changed}
    wants_flags = any(att.name == "FLAGS" for att in atts)

    missing = 0
    for seq, uid in targets:
        record = records.get(uid)
        if record is None:
            # Expunged by another session and not yet announced: no data,
            # never another message's (RFC 2180 §4.1.2).
            missing += 1
            continue
        record = updated.get(uid, record)
        message = _Message(store, record)
        flags = selected.with_recent(uid, record.flags)
        items = [_fetch_item(message, att, flags) for att in atts]
        if uid in updated and not wants_flags:
            items.append(b"FLAGS " + flag_list(flags))
        if uid in updated and session.condstore and not wants_modseq:
            # RFC 7162 §3.2: a flag change this session did not ask to see
            # is reported with its MODSEQ.
            items.append(b"MODSEQ (%d)" % record.modseq)
        response.raw(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
    if missing and not command.uid:
        # RFC 5530 §3: some requested messages no longer exist.
        return "Some messages were expunged meanwhile", errors.EXPUNGEISSUED
    return None
