"""Argument grammars of the IMAP extensions that add or widen commands.

Pure code without I/O, used by `garrison.imap.parser`: LIST-EXTENDED
(RFC 5258) with LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154),
MULTIAPPEND (RFC 3502) with BINARY literal8 (RFC 3516) and UTF8=ACCEPT
appends (RFC 6855), SORT and THREAD criteria (RFC 5256), QUOTA (RFC 9208),
COMPRESS (RFC 4978) and OBJECTID identifiers (RFC 8474). Each function is named after the ABNF rule it
parses and raises `ParseError` on a syntax error.
"""

from __future__ import annotations

from garrison.imap.command import (
    Append,
    AppendMessage,
    Compress,
    FetchAtt,
    ListArgs,
    LiteralData,
    MailboxArg,
    QuotaRootArg,
    Section,
    SetQuota,
    SortCriterion,
)
from garrison.imap.syntax import (
    Cursor,
    parse_astring,
    parse_atom,
    parse_date_time,
    parse_flag_list,
    parse_list_mailbox,
    parse_literal,
    parse_mailbox,
    parse_number,
    parse_nz_number,
)

# RFC 5258 §3 and RFC 6154 §5.3: the selection options we implement.
LIST_SELECTION_OPTIONS = frozenset(
    {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
)
# RFC 5258 §3, RFC 5819 §2 and RFC 6154 §5.2: the return options.
LIST_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"})
# RFC 5256 §3: sort-key.
SORT_KEYS = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"})
THREAD_ALGORITHMS = frozenset({"ORDEREDSUBJECT", "REFERENCES"})
# RFC 3502 leaves the count open; this bounds the work of one command.
MAX_APPEND_MESSAGES = 1000


def _atom_upper(cursor: Cursor) -> str:
    return parse_atom(cursor).decode("ascii").upper()


def parse_list_select_opts(cursor: Cursor) -> frozenset[str]:
    """list-select-opts = "(" [list-select-option *(SP list-select-option)] ")" """
    cursor.expect(b"(")
    options: set[str] = set()
    while not cursor.take(b")"):
        if options:
            cursor.sp()
        option = _atom_upper(cursor)
        # RFC 5258 §3: an unknown selection option is an error.
        if option not in LIST_SELECTION_OPTIONS:
            raise cursor.fail(f"unknown LIST selection option {option}")
        options.add(option)
    # RFC 5258 §3: RECURSIVEMATCH needs another option that is not REMOTE.
    if "RECURSIVEMATCH" in options and not options - {"RECURSIVEMATCH", "REMOTE"}:
        raise cursor.fail("RECURSIVEMATCH needs another selection option")
    return frozenset(options)


def _parse_status_items(cursor: Cursor, known: frozenset[str]) -> tuple[str, ...]:
    cursor.expect(b"(")
    items: list[str] = []
    while True:
        item = _atom_upper(cursor)
        if item not in known:
            raise cursor.fail(f"unknown STATUS item {item}")
        items.append(item)
        if cursor.take(b")"):
            return tuple(dict.fromkeys(items))
        cursor.sp()


def parse_list_return_opts(
    cursor: Cursor, status_items: frozenset[str]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")" """
    cursor.expect(b"RETURN")
    cursor.sp()
    cursor.expect(b"(")
    options: set[str] = set()
    items: tuple[str, ...] = ()
    while not cursor.take(b")"):
        if options:
            cursor.sp()
        option = _atom_upper(cursor)
        if option not in LIST_RETURN_OPTIONS:
            raise cursor.fail(f"unknown LIST return option {option}")
        if option == "STATUS":
            cursor.sp()
            items = _parse_status_items(cursor, status_items)
        options.add(option)
    return frozenset(options), items


def parse_list(cursor: Cursor, status_items: frozenset[str]) -> ListArgs:
    """list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    [SP list-return-opts]
    """
    cursor.sp()
    selection: frozenset[str] = frozenset()
    extended = False
    if cursor.peek() == ord("("):
        selection = parse_list_select_opts(cursor)
        extended = True
        cursor.sp()
    reference = parse_mailbox(cursor)
    cursor.sp()
    if cursor.take(b"("):
        # RFC 5258 §3: patterns = "(" list-mailbox *(SP list-mailbox) ")"
        patterns = [parse_list_mailbox(cursor)]
        while not cursor.take(b")"):
            cursor.sp()
            patterns.append(parse_list_mailbox(cursor))
        extended = True
    else:
        patterns = [parse_list_mailbox(cursor)]
    returns: frozenset[str] = frozenset()
    items: tuple[str, ...] = ()
    if not cursor.at_end():
        cursor.sp()
        returns, items = parse_list_return_opts(cursor, status_items)
        extended = True
    return ListArgs(
        reference,
        patterns[0],
        patterns=tuple(patterns),
        selection=selection,
        returns=returns,
        status_items=items,
        extended=extended,
    )


def parse_literal8(cursor: Cursor) -> LiteralData:
    """literal8 = "~{" number ["+"] "}" CRLF *OCTET (RFC 3516 §4.1)"""
    cursor.expect(b"~")
    return parse_literal(cursor, allow_nul=True)


def parse_append_message(cursor: Cursor) -> AppendMessage:
    """append-message = [flag-list SP] [date-time SP] append-data

    append-data = literal / literal8 / "UTF8" SP "(" literal8 ")"
    """
    flags: frozenset[str] = frozenset()
    internaldate = None
    if cursor.peek() == ord("("):
        flags = parse_flag_list(cursor)
        cursor.sp()
    if cursor.peek() == 0x22:
        internaldate = parse_date_time(cursor)
        cursor.sp()
    if cursor.take(b"UTF8 ("):
        # RFC 6855 §4: the UTF8 append data extension carries a literal8.
        message = parse_literal8(cursor)
        cursor.expect(b")")
        return AppendMessage(flags, internaldate, message, binary=True, utf8=True)
    if cursor.peek() == ord("~"):
        return AppendMessage(flags, internaldate, parse_literal8(cursor), binary=True)
    if cursor.peek() != ord("{"):
        raise cursor.fail("expected the message as a literal")
    return AppendMessage(flags, internaldate, parse_literal(cursor, allow_nul=True))


def parse_append(cursor: Cursor) -> Append:
    """append = "APPEND" SP mailbox 1*(SP append-message) (RFC 3502 §6)"""
    cursor.sp()
    mailbox = parse_mailbox(cursor)
    messages = []
    while not cursor.at_end():
        if len(messages) >= MAX_APPEND_MESSAGES:
            raise cursor.fail(f"more than {MAX_APPEND_MESSAGES} messages in one APPEND")
        cursor.sp()
        messages.append(parse_append_message(cursor))
    if not messages:
        raise cursor.fail("expected a message to append")
    first = messages[0]
    return Append(
        mailbox,
        first.flags,
        first.internaldate,
        first.message,
        binary=first.binary,
        utf8=first.utf8,
        more=tuple(messages[1:]),
    )


def parse_sort_criteria(cursor: Cursor) -> tuple[SortCriterion, ...]:
    """sort-criteria = "(" sort-criterion *(SP sort-criterion) ")" """
    cursor.expect(b"(")
    criteria = []
    while True:
        reverse = cursor.take(b"REVERSE ")
        key = _atom_upper(cursor)
        if key not in SORT_KEYS:
            raise cursor.fail(f"unknown sort key {key}")
        criteria.append(SortCriterion(key, reverse))
        if cursor.take(b")"):
            return tuple(criteria)
        cursor.sp()


def parse_thread_algorithm(cursor: Cursor) -> str:
    """thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext"""
    algorithm = _atom_upper(cursor)
    if algorithm not in THREAD_ALGORITHMS:
        raise cursor.fail(f"unknown threading algorithm {algorithm}")
    return algorithm


def parse_charset(cursor: Cursor) -> str:
    """charset = atom / quoted, upper-cased."""
    return parse_astring(cursor).decode("ascii", "replace").upper()


def parse_getquota(cursor: Cursor) -> QuotaRootArg:
    """getquota = "GETQUOTA" SP quota-root-name"""
    cursor.sp()
    return QuotaRootArg(parse_astring(cursor).decode("utf-8", "replace"))


def parse_getquotaroot(cursor: Cursor) -> QuotaRootArg:
    """getquotaroot = "GETQUOTAROOT" SP mailbox"""
    cursor.sp()
    return QuotaRootArg(parse_mailbox(cursor))


def parse_setquota(cursor: Cursor) -> SetQuota:
    """setquota = "SETQUOTA" SP quota-root-name SP setquota-list"""
    cursor.sp()
    root = parse_astring(cursor).decode("utf-8", "replace")
    cursor.sp()
    cursor.expect(b"(")
    limits = []
    while not cursor.take(b")"):
        if limits:
            cursor.sp()
        resource = _atom_upper(cursor)
        cursor.sp()
        limits.append((resource, parse_number(cursor)))
    return SetQuota(root, tuple(limits))


def parse_compress(cursor: Cursor) -> Compress:
    """compress = "COMPRESS" SP algorithm"""
    cursor.sp()
    return Compress(_atom_upper(cursor))


def parse_section_binary(cursor: Cursor) -> tuple[tuple[int, ...], str]:
    """section-binary = "[" [section-part] "]" (RFC 3516 §4.1)

    Returns the part path and the section text to echo.
    """
    cursor.expect(b"[")
    path: list[int] = []
    if not cursor.take(b"]"):
        path.append(parse_nz_number(cursor))
        while cursor.take(b"."):
            path.append(parse_nz_number(cursor))
        cursor.expect(b"]")
    return tuple(path), ".".join(str(part) for part in path)


def parse_binary_att(cursor: Cursor, name: str) -> FetchAtt:
    """fetch-att =/ "BINARY" [".PEEK"] section-binary [partial]
    / "BINARY.SIZE" section-binary
    """
    path, spec = parse_section_binary(cursor)
    section = Section(path=path, kind="", fields=(), spec=spec)
    if name == "BINARY.SIZE":
        return FetchAtt("BINARY.SIZE", section=section)
    partial = None
    if cursor.take(b"<"):
        start = parse_number(cursor)
        cursor.expect(b".")
        partial = (start, parse_nz_number(cursor))
        cursor.expect(b">")
    peek = name == "BINARY.PEEK"
    return FetchAtt("BINARY", section=section, partial=partial, peek=peek)


def parse_create(cursor: Cursor) -> MailboxArg:
    """create = "CREATE" SP mailbox [SP "(" "USE" SP "(" use-attr ")" ")"]

    RFC 6154 §3: CREATE-SPECIAL-USE. One special-use attribute per mailbox.
    """
    cursor.sp()
    mailbox = parse_mailbox(cursor)
    if cursor.at_end():
        return MailboxArg(mailbox)
    cursor.sp()
    cursor.expect(b"(USE (")
    uses = []
    while not cursor.take(b")"):
        if uses:
            cursor.sp()
        cursor.expect(b"\\")
        uses.append("\\" + parse_atom(cursor).decode("ascii"))
    cursor.expect(b")")
    return MailboxArg(mailbox, special_use=tuple(uses))


# RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
OBJECTID_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)
MAX_OBJECTID_LENGTH = 255


def parse_objectid(cursor: Cursor) -> str:
    """objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 §7)"""
    value = cursor.run(OBJECTID_CHARS)
    if not value:
        raise cursor.fail("expected an object id (letters, digits, _ or -)")
    if len(value) > MAX_OBJECTID_LENGTH:
        raise cursor.fail(
            f"object id is {len(value)} characters long, "
            f"at most {MAX_OBJECTID_LENGTH} are allowed"
        )
    return value.decode("ascii")
