"""SORT and THREAD ordering (RFC 5256) on plain values, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from garrison.imap.command import SortCriterion
from garrison.imap.sorting import (
    SortMessage,
    base_subject,
    format_threads,
    is_reply_or_forward,
    sort_messages,
    thread_messages,
)

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def message(
    number: int,
    subject: str = "",
    *,
    minutes: int | None = None,
    size: int = 100,
    sender: str = "",
    message_id: str = "",
    references: tuple[str, ...] = (),
) -> SortMessage:
    when = BASE + timedelta(minutes=number if minutes is None else minutes)
    return SortMessage(
        number=number,
        position=number,
        arrival=BASE + timedelta(minutes=-number),
        sent=when,
        size=size,
        subject=subject,
        from_mailbox=sender,
        to_mailbox="",
        cc_mailbox="",
        message_id=message_id,
        references=references,
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE: re: Fwd: Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("[list] Re: Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("[Fwd: Re: Hello]", "hello"),
        ("  Hello \t world  ", "hello world"),
        ("[only a blob]", "[only a blob]"),
        ("Re:", ""),
    ],
)
def test_base_subject_extraction(subject, expected):
    assert base_subject(subject) == expected


def test_reply_or_forward_detection():
    assert is_reply_or_forward("Re: x")
    assert is_reply_or_forward("x (fwd)")
    assert is_reply_or_forward("[Fwd: x]")
    assert not is_reply_or_forward("[list] x")


def test_sort_keys_reverse_and_ties():
    messages = [
        message(1, "b", size=300, sender="Zed"),
        message(2, "Re: a", size=100, sender="amy"),
        message(3, "a", size=300, sender="bob"),
    ]
    by = lambda *keys: [  # noqa: E731
        m.number
        for m in sort_messages(
            messages,
            [SortCriterion(k.removeprefix("-"), k.startswith("-")) for k in keys],
        )
    ]
    assert by("SUBJECT") == [2, 3, 1]
    assert by("SIZE") == [2, 1, 3]
    assert by("-SIZE") == [1, 3, 2]
    assert by("SIZE", "-SUBJECT") == [2, 1, 3]
    assert by("FROM") == [2, 3, 1]
    assert by("ARRIVAL") == [3, 2, 1]
    assert by("DATE") == [1, 2, 3]


def test_orderedsubject_threads():
    messages = [
        message(1, "Topic"),
        message(2, "Other"),
        message(3, "Re: Topic"),
        message(4, "Re: topic"),
    ]
    threads = thread_messages(messages, "ORDEREDSUBJECT")
    assert format_threads(threads) == "(1 (3)(4))(2)"


def test_references_threads_link_by_message_id():
    messages = [
        message(1, "Plan", message_id="<a@x>"),
        message(2, "Re: Plan", message_id="<b@x>", references=("<a@x>",)),
        message(3, "Re: Plan", message_id="<c@x>", references=("<a@x>", "<b@x>")),
        message(4, "Re: Plan", message_id="<d@x>", references=("<a@x>",)),
        message(5, "Lunch", message_id="<e@x>"),
    ]
    threads = thread_messages(messages, "REFERENCES")
    assert format_threads(threads) == "(1 (2 3)(4))(5)"


def test_references_missing_parent_gets_dummy():
    # Both replies refer to a message that is not in the mailbox, so they
    # share a dummy root.
    messages = [
        message(1, "Re: Gone", message_id="<b@x>", references=("<gone@x>",)),
        message(2, "Re: Gone", message_id="<c@x>", references=("<gone@x>",)),
    ]
    threads = thread_messages(messages, "REFERENCES")
    assert format_threads(threads) == "((1)(2))"


def test_references_groups_same_subject_without_references():
    messages = [
        message(1, "Report", message_id="<a@x>"),
        message(2, "Re: Report", message_id="<b@x>"),
    ]
    threads = thread_messages(messages, "REFERENCES")
    assert format_threads(threads) == "(1 2)"


def test_references_loop_does_not_hang():
    messages = [
        message(1, "x", message_id="<a@x>", references=("<b@x>",)),
        message(2, "y", message_id="<b@x>", references=("<a@x>",)),
    ]
    text = format_threads(thread_messages(messages, "REFERENCES"))
    assert sorted(text.replace("(", " ").replace(")", " ").split()) == ["1", "2"]


def test_duplicate_message_ids_keep_both_messages():
    messages = [
        message(1, "a", message_id="<same@x>"),
        message(2, "b", message_id="<same@x>"),
    ]
    assert format_threads(thread_messages(messages, "REFERENCES")) == "(1)(2)"
