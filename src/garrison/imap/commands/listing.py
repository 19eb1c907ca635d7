"""LIST with the RFC 5258 extensions, RFC 5819 LIST-STATUS and RFC 6154.

A LIST in the RFC 3501 form goes to `mailboxes.list_mailboxes`. The
extended form adds several patterns, the selection options SUBSCRIBED,
REMOTE (no remote mailboxes exist, so it changes nothing), RECURSIVEMATCH
and SPECIAL-USE, and the return options SUBSCRIBED, CHILDREN, SPECIAL-USE
and STATUS. \\HasChildren or \\HasNoChildren and the special-use attribute
are always returned, which RFC 5258 §4 and RFC 6154 §2 allow.
"""

from __future__ import annotations

from garrison.imap.command import Command, ListArgs
from garrison.imap.commands.mailboxes import (
    _list_line,
    list_mailboxes,
    pattern_regex,
    status_response,
)
from garrison.imap.encoder import Response
from garrison.imap.session import Session
from garrison.store import DELIMITER, INBOX, Mailbox

# RFC 5258 §3: the extended data item of a parent that is returned only
# because a descendant matches the selection.
_CHILDINFO_SUBSCRIBED = b' ("CHILDINFO" ("SUBSCRIBED"))'


def _with_parents(names: set[str]) -> set[str]:
    """Return the names plus every superior name implied by them."""
    result = set(names)
    for name in names:
        parts = name.split(DELIMITER)
        for depth in range(1, len(parts)):
            result.add(DELIMITER.join(parts[:depth]))
    return result


def _has_descendant(name: str, names: set[str]) -> bool:
    prefix = name + DELIMITER
    return any(other.startswith(prefix) for other in names)


def _attributes(
    name: str,
    mailbox: Mailbox | None,
    tree: set[str],
    subscribed: bool,
) -> list[str]:
    # RFC 5258 §3: \NonExistent, which implies \Noselect, marks a name
    # without a mailbox: a parent implied by a child, or a subscription.
    attributes = [] if mailbox is not None else ["\\NonExistent"]
    if subscribed:
        attributes.append("\\Subscribed")
    # RFC 5258 §4 and RFC 3348: children among the existing mailboxes.
    attributes.append(
        "\\HasChildren" if _has_descendant(name, tree) else "\\HasNoChildren"
    )
    if mailbox is not None and mailbox.special_use:
        # RFC 6154 §2: the special-use attribute.
        attributes.append(mailbox.special_use)
    return attributes


async def list_command(session: Session, command: Command, response: Response) -> None:
    args: ListArgs = command.args
    if not args.extended:
        await list_mailboxes(session, command, response)
        return
    assert session.account is not None
    account_id = session.account.id
    store = session.store
    existing = {mailbox.name: mailbox for mailbox in store.list_mailboxes(account_id)}
    tree = _with_parents(set(existing))
    subscriptions = store.subscriptions(account_id)

    select_subscribed = "SUBSCRIBED" in args.selection
    select_special = "SPECIAL-USE" in args.selection
    recursive = "RECURSIVEMATCH" in args.selection
    # RFC 5258 §3: the SUBSCRIBED selection implies the SUBSCRIBED return option.
    return_subscribed = select_subscribed or "SUBSCRIBED" in args.returns

    def selected(name: str) -> bool:
        if select_subscribed and name not in subscriptions:
            return False
        if select_special:
            mailbox = existing.get(name)
            return mailbox is not None and bool(mailbox.special_use)
        return True

    candidates = set(tree) | (subscriptions if select_subscribed else set())
    regexes = [
        pattern_regex(args.reference, pattern) for pattern in args.patterns if pattern
    ]
    utf8 = session.utf8_mailboxes
    for name in sorted(_with_parents(candidates), key=lambda n: (n != INBOX, n)):
        if not any(regex.match(name) for regex in regexes):
            continue
        is_selected = selected(name)
        # RFC 5258 §3: with RECURSIVEMATCH, a matching name that is not
        # selected itself is returned when a descendant is, with CHILDINFO.
        prefix = name + DELIMITER
        child_info = (
            recursive
            and select_subscribed
            and not is_selected
            and any(
                selected(other) for other in subscriptions if other.startswith(prefix)
            )
        )
        if not is_selected and not child_info:
            continue
        mailbox = existing.get(name)
        attributes = _attributes(
            name, mailbox, tree, return_subscribed and name in subscriptions
        )
        line = _list_line("LIST", attributes, name, utf8)
        if child_info:
            line += _CHILDINFO_SUBSCRIBED
        response.untagged(line)
        # RFC 5819 §2: STATUS follows the LIST response of a selectable mailbox.
        if "STATUS" in args.returns and mailbox is not None:
            response.untagged(status_response(session, mailbox, args.status_items))
