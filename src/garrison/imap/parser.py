"""IMAP4rev1 command parser: complete command bytes in, typed `Command` out.

Pure code without I/O. `parse_command(lines, literals)` takes a command as
the reader delivers it (see `garrison.imap.syntax` for the shape) and
returns a `Command` whose `args` is the argument object of that command.
The basic ABNF rules live in `garrison.imap.syntax` and are re-exported
here; this module adds the command grammar of RFC 3501 §6 and §9 and of the
extensions we announce: LITERAL+ (RFC 7888), UIDPLUS (RFC 4315), MOVE
(RFC 6851), ID (RFC 2971), ENABLE (RFC 5161), SASL-IR (RFC 4959), UNSELECT
(RFC 3691), IDLE (RFC 2177).

Every syntax error raises `ParseError` (tagged once the tag is known), and
nesting in SEARCH is bounded by `max_search_depth`, so a hostile command can
neither crash the parser nor exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from garrison.imap.command import (
    Authenticate,
    Command,
    CopyArgs,
    Enable,
    Expunge,
    Fetch,
    FetchAtt,
    Id,
    ListArgs,
    LiteralData,
    Login,
    MailboxArg,
    Rename,
    Search,
    SearchKey,
    Section,
    Select,
    Sort,
    Status,
    Store,
    Thread,
)
from garrison.imap.modifiers import (
    parse_fetch_modifiers,
    parse_search_modseq,
    parse_search_return_opts,
    parse_select_params,
    parse_store_modifiers,
)
from garrison.imap.parser_ext import (
    parse_append,
    parse_binary_att,
    parse_charset,
    parse_compress,
    parse_create,
    parse_getquota,
    parse_getquotaroot,
    parse_list,
    parse_objectid,
    parse_setquota,
    parse_sort_criteria,
    parse_thread_algorithm,
)
from garrison.imap.syntax import (
    ASTRING_CHARS,
    ATOM_CHARS,
    TAG_CHARS,
    Cursor,
    ParseError,
    parse_astring,
    parse_atom,
    parse_date,
    parse_date_time,
    parse_flag,
    parse_flag_list,
    parse_list_mailbox,
    parse_mailbox,
    parse_nstring,
    parse_number,
    parse_nz_number,
    parse_sequence_set,
    parse_string,
)

__all__ = [
    "Cursor",
    "ParseError",
    "parse_command",
    "parse_astring",
    "parse_date",
    "parse_date_time",
    "parse_fetch_att",
    "parse_flag",
    "parse_flag_list",
    "parse_list_mailbox",
    "parse_mailbox",
    "parse_nstring",
    "parse_search_key",
    "parse_section",
    "parse_sequence_set",
    "parse_string",
]

DEFAULT_MAX_SEARCH_DEPTH = 32

# RFC 3501 §6.4.5: the FETCH macros.
_FETCH_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE_FETCH_ATTS = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        # RFC 7162 §3.1.4.
        "MODSEQ",
        # RFC 8474 §5.
        "EMAILID",
        "THREADID",
    }
)
_SECTION_TEXTS = frozenset(
    {"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"}
)
_FETCH_NAME_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789."
)
_SECTION_WORD_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz."
)

# RFC 3501 §6.3.10 and RFC 7162 §3.1.6 (HIGHESTMODSEQ): the STATUS data items.
# RFC 8438 adds SIZE, RFC 8474 MAILBOXID, RFC 9208 §4.2 DELETED and
# DELETED-STORAGE.
STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"}
) | {"SIZE", "MAILBOXID", "DELETED", "DELETED-STORAGE"}

# Search keys by argument shape (RFC 3501 §6.4.4).
_SEARCH_FLAG_KEYS = frozenset(
    {
        "ALL",
        "ANSWERED",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "NEW",
        "OLD",
        "RECENT",
        "SEEN",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNSEEN",
    }
)
_SEARCH_STRING_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
_SEARCH_DATE_KEYS = frozenset(
    {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"}
)
_SEARCH_NUMBER_KEYS = frozenset({"LARGER", "SMALLER"})
# RFC 5032 §3: OLDER and YOUNGER take an interval in seconds.
_SEARCH_INTERVAL_KEYS = frozenset({"OLDER", "YOUNGER"})
_SEARCH_KEYWORD_KEYS = frozenset({"KEYWORD", "UNKEYWORD"})

# RFC 2971 §3.3: at most 30 field-value pairs.
_MAX_ID_PAIRS = 30


# --- FETCH -----------------------------------------------------------------


def parse_header_list(cursor: Cursor) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """header-list = "(" header-fld-name *(SP header-fld-name) ")"

    Returns the names as sent and upper-cased.
    """
    cursor.expect(b"(")
    names = [parse_astring(cursor)]
    while not cursor.take(b")"):
        cursor.sp()
        names.append(parse_astring(cursor))
    sent = []
    for name in names:
        # RFC 5322 §3.6.8: field names are printable ASCII except ":".
        if not name or any(byte < 0x21 or byte > 0x7E or byte == 0x3A for byte in name):
            raise cursor.fail("invalid header field name")
        sent.append(name.decode("ascii"))
    return tuple(sent), tuple(name.upper() for name in sent)


def parse_section(cursor: Cursor) -> Section:
    """section = "[" [section-spec] "]" """
    cursor.expect(b"[")
    path: list[int] = []
    kind = ""
    fields: tuple[str, ...] = ()
    spec_fields = ""
    if not cursor.take(b"]"):
        trailing_dot = False
        while 0x30 <= cursor.peek() <= 0x39:
            path.append(parse_nz_number(cursor))
            trailing_dot = cursor.take(b".")
            if not trailing_dot:
                break
        if trailing_dot or (not path and cursor.peek() != ord("]")):
            kind = cursor.run(_SECTION_WORD_CHARS).decode("ascii").upper()
            if kind not in _SECTION_TEXTS:
                raise cursor.fail("invalid section text")
            # RFC 3501 §6.4.5: MIME is only valid after a part number.
            if kind == "MIME" and not path:
                raise cursor.fail("MIME requires a part number")
            if kind.startswith("HEADER.FIELDS"):
                cursor.sp()
                sent, fields = parse_header_list(cursor)
                spec_fields = " (" + " ".join(sent) + ")"
        cursor.expect(b"]")
    spec = ".".join(str(part) for part in path)
    if path and kind:
        spec += "."
    spec += kind + spec_fields
    return Section(path=tuple(path), kind=kind, fields=fields, spec=spec)


def parse_fetch_att(cursor: Cursor) -> FetchAtt:
    """fetch-att = "ENVELOPE" / "FLAGS" / ... / "BODY" [".PEEK"] section [partial]

    partial = "<" number "." nz-number ">"
    """
    name = cursor.run(_FETCH_NAME_CHARS).decode("ascii").upper()
    if name in ("BODY", "BODY.PEEK") and cursor.peek() == ord("["):
        section = parse_section(cursor)
        partial = None
        if cursor.take(b"<"):
            start = parse_number(cursor)
            cursor.expect(b".")
            length = parse_nz_number(cursor)
            cursor.expect(b">")
            partial = (start, length)
        return FetchAtt(
            "BODY", section=section, partial=partial, peek=name == "BODY.PEEK"
        )
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE") and cursor.peek() == ord("["):
        return parse_binary_att(cursor, name)
    if name not in _SIMPLE_FETCH_ATTS:
        if name:
            raise cursor.fail(f"invalid fetch attribute {name!r}")
        if cursor.peek() < 0:
            raise cursor.fail("missing fetch attribute")
        raise cursor.fail(f"invalid fetch attribute starting with {chr(cursor.peek())!r}")
    return FetchAtt(name)


def _parse_fetch_args(cursor: Cursor) -> Fetch:
    cursor.sp()
    sequence_set = parse_sequence_set(cursor)
    cursor.sp()
    if cursor.take(b"("):
        atts = [parse_fetch_att(cursor)]
        while not cursor.take(b")"):
            cursor.sp()
            atts.append(parse_fetch_att(cursor))
    else:
        start = cursor.pos
        word = cursor.run(ATOM_CHARS).decode("ascii").upper()
        if word in _FETCH_MACROS and cursor.peek() != ord("["):
            atts = [FetchAtt(name) for name in _FETCH_MACROS[word]]
        else:
            cursor.pos = start
            atts = [parse_fetch_att(cursor)]
    if cursor.at_end():
        return Fetch(sequence_set, tuple(atts))
    changed_since, vanished = parse_fetch_modifiers(cursor)
    return Fetch(sequence_set, tuple(atts), changed_since, vanished)


# --- SEARCH ----------------------------------------------------------------


def parse_search_key(cursor: Cursor, depth: int, max_depth: int) -> SearchKey:
    """search-key, one level; `depth` counts the enclosing OR/NOT/parentheses."""
    if depth > max_depth:
        raise cursor.fail(f"search program nested deeper than {max_depth} levels")
    if cursor.take(b"("):
        children = [parse_search_key(cursor, depth + 1, max_depth)]
        while not cursor.take(b")"):
            cursor.sp()
            children.append(parse_search_key(cursor, depth + 1, max_depth))
        return SearchKey("AND", children=tuple(children))
    next_byte = cursor.peek()
    # RFC 5182 §3: "$" is a sequence set too.
    if next_byte in (ord("*"), ord("$")) or 0x30 <= next_byte <= 0x39:
        return SearchKey("SEQSET", parse_sequence_set(cursor))
    name = cursor.run(ATOM_CHARS).decode("ascii").upper()
    if name in _SEARCH_FLAG_KEYS:
        return SearchKey(name)
    if not name:
        raise cursor.fail("expected a search key")
    cursor.sp()
    if name in _SEARCH_STRING_KEYS:
        return SearchKey(name, parse_astring(cursor))
    if name in _SEARCH_DATE_KEYS:
        return SearchKey(name, parse_date(cursor))
    if name in _SEARCH_NUMBER_KEYS:
        return SearchKey(name, parse_number(cursor))
    if name in _SEARCH_INTERVAL_KEYS:
        return SearchKey(name, parse_nz_number(cursor))
    if name == "MODSEQ":
        return SearchKey(name, parse_search_modseq(cursor))
    if name in _SEARCH_KEYWORD_KEYS:
        return SearchKey(name, parse_atom(cursor).decode("ascii"))
    if name in ("EMAILID", "THREADID"):
        # RFC 8474 §6: EMAILID and THREADID filter by object id.
        return SearchKey(name, parse_objectid(cursor))
    if name == "HEADER":
        field = parse_astring(cursor)
        cursor.sp()
        return SearchKey(name, (field, parse_astring(cursor)))
    if name == "UID":
        return SearchKey(name, parse_sequence_set(cursor))
    if name == "NOT":
        return SearchKey(
            name, children=(parse_search_key(cursor, depth + 1, max_depth),)
        )
    if name == "OR":
        left = parse_search_key(cursor, depth + 1, max_depth)
        cursor.sp()
        right = parse_search_key(cursor, depth + 1, max_depth)
        return SearchKey(name, children=(left, right))
    raise cursor.fail(f"unknown search key {name}")


def _parse_search_args(cursor: Cursor, max_depth: int) -> Search:
    cursor.sp()
    return_options = None
    if cursor.take(b"RETURN "):
        return_options = parse_search_return_opts(cursor)
        cursor.sp()
    charset = None
    start = cursor.pos
    if cursor.take(b"CHARSET "):
        charset = parse_astring(cursor).decode("ascii", "replace").upper()
        cursor.sp()
    elif cursor.pos != start:
        cursor.pos = start
    keys = [parse_search_key(cursor, 0, max_depth)]
    while not cursor.at_end():
        cursor.sp()
        keys.append(parse_search_key(cursor, 0, max_depth))
    key = keys[0] if len(keys) == 1 else SearchKey("AND", children=tuple(keys))
    return Search(charset, key, return_options)


# --- other commands --------------------------------------------------------


def _parse_login(cursor: Cursor) -> Login:
    cursor.sp()
    username = parse_astring(cursor)
    cursor.sp()
    return Login(username, parse_astring(cursor))


def _parse_authenticate(cursor: Cursor) -> Authenticate:
    cursor.sp()
    mechanism = parse_atom(cursor).decode("ascii").upper()
    initial = None
    if not cursor.at_end():
        cursor.sp()
        # RFC 4959 §7: initial-response = base64 / "=".
        initial = cursor.run(ASTRING_CHARS)
        if not initial:
            raise cursor.fail("expected a base64 initial response")
    return Authenticate(mechanism, initial)


def _parse_mailbox_arg(cursor: Cursor) -> MailboxArg:
    cursor.sp()
    return MailboxArg(parse_mailbox(cursor))


def _parse_select(cursor: Cursor) -> Select:
    cursor.sp()
    mailbox = parse_mailbox(cursor)
    if cursor.at_end():
        return Select(mailbox)
    # RFC 4466 §2.1 and RFC 7162 §3.1.8, §3.2.5: select parameters.
    cursor.sp()
    condstore, qresync = parse_select_params(cursor)
    return Select(mailbox, condstore, qresync)


def _parse_rename(cursor: Cursor) -> Rename:
    cursor.sp()
    old = parse_mailbox(cursor)
    cursor.sp()
    return Rename(old, parse_mailbox(cursor))


def _parse_list(cursor: Cursor) -> ListArgs:
    cursor.sp()
    reference = parse_mailbox(cursor)
    cursor.sp()
    return ListArgs(reference, parse_list_mailbox(cursor))


def _parse_status(cursor: Cursor) -> Status:
    cursor.sp()
    mailbox = parse_mailbox(cursor)
    cursor.sp()
    cursor.expect(b"(")
    items = []
    while True:
        item = parse_atom(cursor).decode("ascii").upper()
        if item not in STATUS_ITEMS:
            raise cursor.fail(f"unknown STATUS item {item}")
        items.append(item)
        if cursor.take(b")"):
            break
        cursor.sp()
    return Status(mailbox, tuple(dict.fromkeys(items)))


def _parse_list_extended(cursor: Cursor) -> ListArgs:
    return parse_list(cursor, STATUS_ITEMS)


def _parse_search_criteria(cursor: Cursor, max_depth: int) -> tuple[str, SearchKey]:
    """search-criteria = charset 1*(SP search-key) (RFC 5256 §5)"""
    cursor.sp()
    charset = parse_charset(cursor)
    keys = []
    while not cursor.at_end():
        cursor.sp()
        keys.append(parse_search_key(cursor, 0, max_depth))
    if not keys:
        raise cursor.fail("expected a search key")
    key = keys[0] if len(keys) == 1 else SearchKey("AND", children=tuple(keys))
    return charset, key


def _parse_sort(cursor: Cursor, max_depth: int) -> Sort:
    """sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria"""
    cursor.sp()
    criteria = parse_sort_criteria(cursor)
    return Sort(criteria, *_parse_search_criteria(cursor, max_depth))


def _parse_thread(cursor: Cursor, max_depth: int) -> Thread:
    """thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria"""
    cursor.sp()
    algorithm = parse_thread_algorithm(cursor)
    return Thread(algorithm, *_parse_search_criteria(cursor, max_depth))


def _parse_store(cursor: Cursor) -> Store:
    cursor.sp()
    sequence_set = parse_sequence_set(cursor)
    cursor.sp()
    unchanged_since = None
    if cursor.peek() == ord("("):
        unchanged_since = parse_store_modifiers(cursor)
    operation = "replace"
    if cursor.take(b"+"):
        operation = "add"
    elif cursor.take(b"-"):
        operation = "remove"
    cursor.expect(b"FLAGS")
    silent = cursor.take(b".SILENT")
    cursor.sp()
    if cursor.peek() == ord("("):
        flags = parse_flag_list(cursor)
    else:
        flag_set = {parse_flag(cursor)}
        while not cursor.at_end():
            cursor.sp()
            flag_set.add(parse_flag(cursor))
        flags = frozenset(flag_set)
    return Store(sequence_set, operation, silent, flags, unchanged_since)


def _parse_copy(cursor: Cursor) -> CopyArgs:
    cursor.sp()
    sequence_set = parse_sequence_set(cursor)
    cursor.sp()
    return CopyArgs(sequence_set, parse_mailbox(cursor))


def _parse_uid_expunge(cursor: Cursor) -> Expunge:
    cursor.sp()
    return Expunge(parse_sequence_set(cursor))


def _parse_enable(cursor: Cursor) -> Enable:
    capabilities = []
    while not cursor.at_end():
        cursor.sp()
        capabilities.append(parse_atom(cursor).decode("ascii").upper())
    if not capabilities:
        raise cursor.fail("ENABLE needs at least one capability")
    return Enable(tuple(capabilities))


def _parse_id(cursor: Cursor) -> Id:
    cursor.sp()
    if cursor.take(b"NIL"):
        return Id(None)
    cursor.expect(b"(")
    parameters: dict[str, str | None] = {}
    if cursor.take(b")"):
        return Id(parameters)
    while True:
        key = parse_string(cursor).decode("utf-8", "replace")
        cursor.sp()
        value = parse_nstring(cursor)
        if len(parameters) >= _MAX_ID_PAIRS:
            raise cursor.fail("too many ID parameters")
        parameters[key] = None if value is None else value.decode("utf-8", "replace")
        if cursor.take(b")"):
            return Id(parameters)
        cursor.sp()


def _no_args(cursor: Cursor) -> None:
    return None


_ArgParser = Callable[[Cursor], Any]

_COMMANDS: dict[str, _ArgParser] = {
    "CAPABILITY": _no_args,
    "NOOP": _no_args,
    "LOGOUT": _no_args,
    "STARTTLS": _no_args,
    "LOGIN": _parse_login,
    "AUTHENTICATE": _parse_authenticate,
    "ID": _parse_id,
    "ENABLE": _parse_enable,
    "NAMESPACE": _no_args,
    "SELECT": _parse_select,
    "EXAMINE": _parse_select,
    "CREATE": parse_create,
    "DELETE": _parse_mailbox_arg,
    "RENAME": _parse_rename,
    "SUBSCRIBE": _parse_mailbox_arg,
    "UNSUBSCRIBE": _parse_mailbox_arg,
    "LIST": _parse_list_extended,
    "LSUB": _parse_list,
    "STATUS": _parse_status,
    "APPEND": parse_append,
    "GETQUOTA": parse_getquota,
    "GETQUOTAROOT": parse_getquotaroot,
    "SETQUOTA": parse_setquota,
    "COMPRESS": parse_compress,
    "CHECK": _no_args,
    "CLOSE": _no_args,
    "UNSELECT": _no_args,
    "EXPUNGE": _no_args,
    "IDLE": _no_args,
    "STORE": _parse_store,
    "COPY": _parse_copy,
    "MOVE": _parse_copy,
    "FETCH": _parse_fetch_args,
}

# RFC 3501 §6.4.8, RFC 4315 §2.1, RFC 6851 §3.2, RFC 5256 §3: commands
# with a UID form.
_UID_COMMANDS = frozenset(
    {"COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE", "SORT", "THREAD"}
)


def parse_tag(cursor: Cursor) -> str:
    """tag = 1*<any ASTRING-CHAR except "+">"""
    tag = cursor.run(TAG_CHARS)
    if not tag:
        raise cursor.fail("missing command tag")
    cursor.tag = tag.decode("ascii")
    return cursor.tag


def parse_command(
    lines: Sequence[bytes],
    literals: Sequence[LiteralData] = (),
    *,
    max_search_depth: int = DEFAULT_MAX_SEARCH_DEPTH,
    utf8_mailboxes: bool = False,
) -> Command:
    """Parse one complete command.

    With `utf8_mailboxes` (IMAP4rev2 or UTF8=ACCEPT enabled), mailbox names
    are read as UTF-8 instead of modified UTF-7.

    Raises `ParseError`; its `tag` is set as soon as the tag was read, so the
    caller can reply with a tagged BAD.
    """
    cursor = Cursor(lines, literals)
    cursor.utf8_mailboxes = utf8_mailboxes
    tag = parse_tag(cursor)
    cursor.sp()
    name = cursor.run(ATOM_CHARS).decode("ascii").upper()
    if not name:
        raise cursor.fail("missing command name")
    uid = False
    if name == "UID":
        cursor.sp()
        name = cursor.run(ATOM_CHARS).decode("ascii").upper()
        if name not in _UID_COMMANDS:
            raise cursor.fail(f"UID {name} is not a valid command")
        uid = True
    if name == "SEARCH":
        args: Any = _parse_search_args(cursor, max_search_depth)
    elif uid and name == "EXPUNGE":
        args = _parse_uid_expunge(cursor)
    elif name == "SORT":
        args = _parse_sort(cursor, max_search_depth)
    elif name == "THREAD":
        args = _parse_thread(cursor, max_search_depth)
    else:
        parse_args = _COMMANDS.get(name)
        if parse_args is None:
            raise cursor.fail(f"unknown command {name}")
        args = parse_args(cursor)
    cursor.expect_end()
    return Command(tag=tag, name=name, args=args, uid=uid)
