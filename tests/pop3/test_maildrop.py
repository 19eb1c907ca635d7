"""The per-session maildrop: numbering, deletion marks and UIDL values."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from garrison.pop3 import replies
from garrison.pop3.errors import POP3Error
from garrison.pop3.maildrop import Maildrop, unique_id


@dataclass
class Record:
    uid: int
    size: int
    blob_id: str = "blob"
    flags: frozenset[str] = field(default_factory=frozenset)


def make_maildrop() -> Maildrop:
    records = [
        Record(uid=3, size=100),
        Record(uid=7, size=200, flags=frozenset({"\\Seen"})),
        Record(uid=9, size=300),
    ]
    return Maildrop(mailbox_id=1, uidvalidity=0x1234, records=records)


def test_numbers_start_at_one_in_uid_order() -> None:
    maildrop = make_maildrop()
    assert [message.number for message in maildrop.messages()] == [1, 2, 3]
    assert [message.uid for message in maildrop.messages()] == [3, 7, 9]
    assert maildrop.count == 3
    assert maildrop.octets == 600


def test_unique_id_combines_uidvalidity_and_uid() -> None:
    assert unique_id(0x1234, 7) == "0000123400000007"
    assert make_maildrop().get(2).unique_id == "0000123400000007"


def test_unique_id_keeps_large_values_distinct() -> None:
    assert unique_id(2**32 - 1, 2**32 - 1) == "ffffffffffffffff"
    assert unique_id(1, 2) != unique_id(2, 1)


def test_delete_hides_message_and_keeps_numbers() -> None:
    maildrop = make_maildrop()
    maildrop.delete(2)
    assert [message.number for message in maildrop.messages()] == [1, 3]
    assert maildrop.count == 2
    assert maildrop.octets == 400
    assert maildrop.get(3).uid == 9


def test_get_deleted_message_fails() -> None:
    maildrop = make_maildrop()
    maildrop.delete(1)
    with pytest.raises(POP3Error) as raised:
        maildrop.get(1)
    assert raised.value.reply == replies.MESSAGE_DELETED.format(number=1)
    with pytest.raises(POP3Error):
        maildrop.delete(1)


@pytest.mark.parametrize("number", [0, 4, 10**9])
def test_get_out_of_range_fails(number: int) -> None:
    with pytest.raises(POP3Error) as raised:
        make_maildrop().get(number)
    assert raised.value.reply == replies.NO_SUCH_MESSAGE.format(number=number)


def test_reset_unmarks_everything() -> None:
    maildrop = make_maildrop()
    maildrop.delete(1)
    maildrop.mark_retrieved(3)
    maildrop.reset()
    assert maildrop.count == 3
    assert maildrop.deleted_uids() == []
    assert maildrop.seen_uids() == []


def test_deleted_and_seen_uids() -> None:
    maildrop = make_maildrop()
    for number in (1, 2, 3):
        maildrop.mark_retrieved(number)
    maildrop.delete(3)
    assert maildrop.deleted_uids() == [9]
    # Message 2 is already \Seen and message 3 is deleted.
    assert maildrop.seen_uids() == [3]
