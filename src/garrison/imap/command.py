"""Typed IMAP commands, as produced by `garrison.imap.parser`.

Every command is a `Command` with its tag, its upper-case name, whether it
came in the UID form, and an argument object of the class named after the
command. The session dispatches on `name`; handlers read `args`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from garrison.imap.types import SequenceSet


class SpooledLiteral:
    """A literal too large to keep in memory, written to a temporary file.

    The file is unlinked at creation, so it disappears when closed or when
    the process exits. `close()` must be called once the command is done.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.file: BinaryIO = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def read(self) -> bytes:
        """Return the whole literal (the caller accepts the memory cost)."""
        self.file.seek(0)
        return self.file.read()

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the literal in chunks of at most `chunk_size` bytes."""
        self.file.seek(0)
        while chunk := self.file.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self.file.close()

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"SpooledLiteral(size={self.size})"


LiteralData = bytes | SpooledLiteral


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed command line with all its literals."""

    tag: str
    name: str
    args: Any = None
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Login:
    username: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str
    # RFC 4959 SASL-IR: the base64 initial response, b"=" for an empty one,
    # or None when the client did not send one.
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class MailboxArg:
    """Arguments of SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE.

    `special_use` contains the attributes of CREATE ... (USE (...)), as sent
    (RFC 6154 §3).
    """

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QResyncParams:
    """The QRESYNC select parameter (RFC 7162 §3.2.5).

    `known_uids` is None when the client sent none; `seq_match` pairs the
    client's sequence numbers with their UIDs, both as sequence sets.
    """

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """Arguments of SELECT and EXAMINE with their RFC 4466 select parameters."""

    mailbox: str
    condstore: bool = False
    qresync: QResyncParams | None = None


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ListArgs:
    """Arguments of LIST and LSUB: reference name and mailbox pattern, decoded.

    RFC 5258 LIST-EXTENDED adds `patterns` (every pattern of a pattern list,
    `pattern` being the first), the upper-cased selection and return
    options, and the RFC 5819 STATUS items. `extended` is True when any
    extended syntax was used.
    """

    reference: str
    pattern: str
    patterns: tuple[str, ...] = ()
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND command.

    `binary` is True for an RFC 3516 literal8 (`~{n}`), `utf8` for the
    RFC 6855 `UTF8 (~{n})` form.
    """

    flags: frozenset[str]
    internaldate: datetime | None
    message: LiteralData
    binary: bool = False
    utf8: bool = False


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND arguments: the first message, then MULTIAPPEND's others (RFC 3502)."""

    mailbox: str
    flags: frozenset[str]
    internaldate: datetime | None
    message: LiteralData
    binary: bool = False
    utf8: bool = False
    more: tuple[AppendMessage, ...] = ()

    @property
    def messages(self) -> tuple[AppendMessage, ...]:
        """Every message of the command, in the order sent."""
        first = AppendMessage(
            self.flags, self.internaldate, self.message, self.binary, self.utf8
        )
        return (first, *self.more)


@dataclass(frozen=True, slots=True)
class Section:
    """An RFC 3501 `section`: part path plus the text specifier.

    `kind` is "" (whole part), "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
    "TEXT" or "MIME". `fields` contains the upper-cased header names for the
    HEADER.FIELDS forms. `spec` is the section text as it is echoed back.
    """

    path: tuple[int, ...]
    kind: str
    fields: tuple[str, ...]
    spec: str


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One `fetch-att`: e.g. FLAGS, or BODY.PEEK[1.HEADER]<0.100>."""

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class Fetch:
    sequence_set: SequenceSet
    atts: tuple[FetchAtt, ...]
    # RFC 7162 §3.1.4 and §3.2.6: the CHANGEDSINCE and VANISHED modifiers.
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    sequence_set: SequenceSet
    # "add" (+FLAGS), "remove" (-FLAGS) or "replace" (FLAGS).
    operation: str
    silent: bool
    flags: frozenset[str]
    # RFC 7162 §3.1.3: the UNCHANGEDSINCE modifier.
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class CopyArgs:
    """Arguments of COPY and MOVE."""

    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class SearchKey:
    """A node of a SEARCH program.

    `op` is the RFC 3501 key name ("SUBJECT", "OR", "NOT", "AND" for a
    parenthesised list or the top level, "SEQSET" for a bare sequence set).
    `value` carries the argument: a string, date, int, SequenceSet or a
    (field, string) pair for HEADER. `children` contains the sub-keys of AND, OR
    and NOT.
    """

    op: str
    value: Any = None
    children: tuple[SearchKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Search:
    charset: str | None
    key: SearchKey
    # RFC 4731 §3: the RETURN options, upper-cased; None without RETURN.
    # An empty RETURN () means ALL.
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Expunge:
    # Only for UID EXPUNGE (RFC 4315 §2.1).
    sequence_set: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Id:
    # None for "ID NIL"; values are None for NIL.
    parameters: dict[str, str | None] | None = field(default=None)


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One RFC 5256 sort key, such as SUBJECT, optionally REVERSE."""

    key: str
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    """Arguments of SORT and UID SORT (RFC 5256 §3)."""

    criteria: tuple[SortCriterion, ...]
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Thread:
    """Arguments of THREAD and UID THREAD (RFC 5256 §3)."""

    algorithm: str
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class QuotaRootArg:
    """Argument of GETQUOTA: a quota root name (RFC 9208 §4.2)."""

    root: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    """Arguments of SETQUOTA: a quota root and resource limits (RFC 9208 §4.1.3)."""

    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Compress:
    """Argument of COMPRESS: the upper-cased algorithm name (RFC 4978 §3)."""

    algorithm: str
