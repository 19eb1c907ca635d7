"""SORT and THREAD ordering (RFC 5256), pure code over `SortMessage` values.

Entry points: `base_subject(subject)` (§2.1), `sort_messages(messages,
criteria)` (§3) and `thread_messages(messages, algorithm)` (§4, §5), which
returns a list of `ThreadNode` trees, and `format_threads` for the wire.

Strings compare case-insensitively (Python `casefold`, close to the
i;unicode-casemap comparator of RFC 5051). Every ordering ends with the
message's position in the mailbox, so equal keys keep mailbox order
(RFC 5256 §3 and §2.2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from garrison.imap.command import SortCriterion


@dataclass(frozen=True, slots=True)
class SortMessage:
    """The sort and thread keys of one message.

    `number` is the sequence number or UID to output and `position` the
    place in the mailbox. `sent` is the Date header, or INTERNALDATE when
    the header is missing or invalid (RFC 5256 §2.2). The address keys are
    the mailbox part of the first address (RFC 5256 §3).
    """

    number: int
    position: int
    arrival: datetime
    sent: datetime
    size: int
    subject: str
    from_mailbox: str
    to_mailbox: str
    cc_mailbox: str
    message_id: str = ""
    references: tuple[str, ...] = ()


# RFC 5256 §5: subj-trailer = "(fwd)" / WSP; subj-refwd = ("re" / ("fw"
# ["d"])) *WSP [subj-blob] ":"; subj-blob = "[" *BLOBCHAR "]" *WSP.
_WSP = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:\(fwd\)| )\Z", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\] *"
_LEADER = re.compile(rf"\A(?:(?:{_BLOB})*(?:re|fwd?) *(?:{_BLOB})?:| )", re.IGNORECASE)
_BLOB_PREFIX = re.compile(rf"\A{_BLOB}")
_FWD_WRAPPER = re.compile(r"\A\[fwd:(.*)\]\Z", re.IGNORECASE | re.DOTALL)


def _extract(subject: str) -> tuple[str, bool]:
    """Return the base subject and whether a reply or forward marker was removed."""
    text = _WSP.sub(" ", subject)
    marked = False
    while True:
        # RFC 5256 §2.1 step 2: remove trailers, "(fwd)" and spaces.
        while match := _TRAILER.search(text):
            marked = marked or match.group(0) != " "
            text = text[: match.start()]
        # Steps 3 to 5: remove leaders, and a blob that does not leave the
        # subject empty, until neither matches.
        while True:
            match = _LEADER.match(text)
            if match:
                marked = marked or match.group(0) != " "
                text = text[match.end() :]
                continue
            match = _BLOB_PREFIX.match(text)
            if match and text[match.end() :]:
                text = text[match.end() :]
                continue
            break
        # Step 6: "[fwd: ...]" around the whole subject is a forward.
        wrapper = _FWD_WRAPPER.match(text)
        if wrapper is None:
            return text, marked
        text = wrapper.group(1)
        marked = True


def base_subject(subject: str) -> str:
    """Return the RFC 5256 §2.1 base subject, case-folded for comparison."""
    return _extract(subject)[0].casefold()


def is_reply_or_forward(subject: str) -> bool:
    """Return True when base subject extraction removed a reply or forward marker."""
    return _extract(subject)[1]


def _sort_value(message: SortMessage, key: str) -> object:
    if key == "ARRIVAL":
        return message.arrival
    if key == "DATE":
        return message.sent
    if key == "SIZE":
        return message.size
    if key == "SUBJECT":
        return base_subject(message.subject)
    if key == "FROM":
        return message.from_mailbox.casefold()
    if key == "TO":
        return message.to_mailbox.casefold()
    return message.cc_mailbox.casefold()


def sort_messages(
    messages: Sequence[SortMessage], criteria: Sequence[SortCriterion]
) -> list[SortMessage]:
    """Order messages by the criteria, the first one most significant (RFC 5256 §3)."""
    ordered = sorted(messages, key=lambda message: message.position)
    # Stable sorts from the least significant key up give the combined order;
    # a REVERSE key reverses only its own comparison.
    for criterion in reversed(criteria):
        ordered.sort(
            key=lambda message: _sort_value(message, criterion.key),  # noqa: B023
            reverse=criterion.reverse,
        )
    return ordered


@dataclass(eq=False)
class ThreadNode:
    """A thread container: a message, or a dummy (None) that only groups children."""

    message: SortMessage | None = None
    parent: ThreadNode | None = None
    children: list[ThreadNode] = field(default_factory=list)

    def first_message(self) -> SortMessage | None:
        """Return this message, or for a dummy the message of its first child."""
        node: ThreadNode | None = self
        while node is not None and node.message is None:
            node = node.children[0] if node.children else None
        return node.message if node is not None else None

    def is_ancestor_of(self, other: ThreadNode) -> bool:
        node: ThreadNode | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def adopt(self, child: ThreadNode) -> None:
        """Make `child` a child of this node, leaving its former parent."""
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def _date_key(node: ThreadNode) -> tuple[datetime, int]:
    message = node.first_message()
    assert message is not None
    return message.sent, message.position


def _link_references(messages: Sequence[SortMessage]) -> list[ThreadNode]:
    """RFC 5256 §5 steps 1 and 2: link messages by Message-ID and References."""
    table: dict[str, ThreadNode] = {}
    for message in sorted(messages, key=lambda m: m.position):
        message_id = message.message_id
        node = table.get(message_id) if message_id else None
        if node is not None and node.message is None:
            node.message = message
        else:
            # Step 1B: a missing or duplicate Message-ID gets a unique key,
            # which no reference can name.
            node = ThreadNode(message)
            unique = message_id and message_id not in table
            table[message_id if unique else f"\0{message.position}"] = node
        # Step 1A: link each reference to the next, unless that makes a loop
        # or the child already has a parent.
        previous: ThreadNode | None = None
        for reference in message.references:
            ref_node = table.get(reference)
            if ref_node is None:
                ref_node = table[reference] = ThreadNode()
            if (
                previous is not None
                and ref_node.parent is None
                and not ref_node.is_ancestor_of(previous)
            ):
                previous.adopt(ref_node)
            previous = ref_node
        # Step 1B: the last reference becomes the message's parent.
        if previous is not None and not node.is_ancestor_of(previous):
            previous.adopt(node)
        elif previous is None and node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
    roots = {id(node): node for node in table.values() if node.parent is None}
    return list(roots.values())


def _prune(nodes: list[ThreadNode], is_root: bool) -> list[ThreadNode]:
    """RFC 5256 §5 step 3: drop empty dummies and promote dummies' children."""
    result: list[ThreadNode] = []
    for node in nodes:
        node.children = _prune(node.children, is_root=False)
        for child in node.children:
            child.parent = node
        if node.message is not None:
            result.append(node)
        elif not node.children:
            continue
        elif is_root and len(node.children) > 1:
            result.append(node)
        else:
            for child in node.children:
                child.parent = node.parent
            result.extend(node.children)
    return result


def _group_by_subject(roots: list[ThreadNode]) -> list[ThreadNode]:
    """RFC 5256 §5 step 5: merge root threads that share a base subject."""
    subjects: dict[str, ThreadNode] = {}
    for root in roots:
        message = root.first_message()
        assert message is not None
        subject = base_subject(message.subject)
        if not subject:
            continue
        current = subjects.get(subject)
        if current is None or (
            (root.message is None and current.message is not None)
            or (
                current.message is not None
                and root.message is not None
                and is_reply_or_forward(current.message.subject)
                and not is_reply_or_forward(root.message.subject)
            )
        ):
            subjects[subject] = root
    merged: list[ThreadNode] = []
    for root in roots:
        message = root.first_message()
        assert message is not None
        subject = base_subject(message.subject)
        target = subjects.get(subject) if subject else None
        if target is None or target is root:
            merged.append(root)
            continue
        if target.message is None and root.message is None:
            for child in list(root.children):
                target.adopt(child)
        elif target.message is None or (
            root.message is not None
            and is_reply_or_forward(root.message.subject)
            and not is_reply_or_forward(target.message.subject)
        ):
            target.adopt(root)
        else:
            dummy = ThreadNode()
            index = merged.index(target) if target in merged else None
            dummy.adopt(target)
            dummy.adopt(root)
            subjects[subject] = dummy
            if index is not None:
                merged[index] = dummy
            else:
                merged.append(dummy)
    # A target that joined a new dummy later in the loop is no longer a root.
    return [root for root in merged if root.parent is None]


def _sort_tree(nodes: list[ThreadNode]) -> None:
    for node in nodes:
        _sort_tree(node.children)
    nodes.sort(key=_date_key)


def thread_messages(
    messages: Sequence[SortMessage], algorithm: str
) -> list[ThreadNode]:
    """Build the threads of RFC 5256 §4 (ORDEREDSUBJECT) or §5 (REFERENCES)."""
    if algorithm == "ORDEREDSUBJECT":
        return _ordered_subject(messages)
    roots = _prune(_link_references(messages), is_root=True)
    for root in roots:
        root.parent = None
    # Step 4: sort the root set by date; step 6: sort every set of siblings.
    _sort_tree(roots)
    roots = _group_by_subject(roots)
    _sort_tree(roots)
    return roots


def _ordered_subject(messages: Sequence[SortMessage]) -> list[ThreadNode]:
    """RFC 5256 §4: one thread per base subject, later messages under the first."""
    ordered = sorted(
        messages,
        key=lambda m: (base_subject(m.subject), m.sent, m.position),
    )
    threads: list[ThreadNode] = []
    last_subject: str | None = None
    for message in ordered:
        subject = base_subject(message.subject)
        node = ThreadNode(message)
        if threads and subject == last_subject:
            threads[-1].adopt(node)
        else:
            threads.append(node)
        last_subject = subject
    threads.sort(key=_date_key)
    return threads


def _format_chain(node: ThreadNode) -> str:
    items: list[str] = []
    current = node
    while True:
        if current.message is not None:
            items.append(str(current.message.number))
        if len(current.children) == 1:
            current = current.children[0]
            continue
        if current.children:
            nested = (f"({_format_chain(child)})" for child in current.children)
            items.append("".join(nested))
        return " ".join(items)


def format_threads(roots: Sequence[ThreadNode]) -> str:
    """Return the RFC 5256 §4 thread-list, such as "(2)(3 6 (4 23)(44 7 96))"."""
    return "".join(f"({_format_chain(root)})" for root in roots)
