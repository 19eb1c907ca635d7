"""Reply parsing, SRS, DSN layout and hop counting, without a network."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.directory.srs import SRS
from garrison.message.hops import count_received
from garrison.queue import dsn
from garrison.queue.routing import parse_host_port
from garrison.smtp.response import ReplyReader, ReplySyntaxError, parse_ehlo_keywords


def test_reply_reader_multiline_in_pieces() -> None:
    reader = ReplyReader()
    assert reader.feed(b"250-mx.example\r\n250-PIPE") == []
    replies = reader.feed(b"LINING\r\n250 DSN\r\n550 5.1.1 No such user\r\n")
    assert [r.code for r in replies] == [250, 550]
    assert parse_ehlo_keywords(replies[0]) == {"PIPELINING": "", "DSN": ""}
    assert replies[1].enhanced == "5.1.1"
    assert replies[1].text == "No such user"


def test_reply_reader_rejects_garbage() -> None:
    with pytest.raises(ReplySyntaxError):
        ReplyReader().feed(b"hello\r\n")
    with pytest.raises(ReplySyntaxError):
        ReplyReader().feed(b"250-a\r\n251 b\r\n")


def test_enhanced_code_class_must_match() -> None:
    (reply,) = ReplyReader().feed(b"250 5.1.1 odd\r\n")
    assert reply.enhanced == ""
    assert reply.text == "5.1.1 odd"


@given(st.binary(max_size=300))
def test_reply_reader_raises_only_its_error(data: bytes) -> None:
    reader = ReplyReader()
    try:
        for reply in reader.feed(data):
            assert 0 <= reply.code <= 999
    except ReplySyntaxError:
        pass


def test_srs_round_trip_survives_lower_case() -> None:
    srs = SRS(b"k" * 32)
    rewritten = srs.forward("Joe.User@origin.example", "forward.test")
    local, _, domain = rewritten.rpartition("@")
    assert domain == "forward.test"
    assert local.startswith("SRS0=")
    assert srs.reverse(local.lower()) == "joe.user@origin.example"
    assert srs.reverse(local) == "Joe.User@origin.example"


def test_srs_rejects_forgery_and_age() -> None:
    srs = SRS(b"k" * 32)
    local = srs.forward("joe@origin.example", "forward.test", now=0).rpartition("@")[0]
    assert SRS(b"other" * 8).reverse(local, now=0) is None
    assert srs.reverse(local.replace("origin", "evil"), now=0) is None
    assert srs.reverse(local, now=20 * 86400) == "joe@origin.example"
    assert srs.reverse(local, now=30 * 86400) is None
    assert srs.reverse("SRS0=broken", now=0) is None


def test_hop_count_stops_at_body() -> None:
    message = (
        b"Received: from a\r\nreceived: from b\r\nSubject: x\r\n"
        b"RECEIVED : from c\r\n\r\nReceived: in the body\r\n"
    )
    assert count_received(message) == 3


def test_parse_host_port() -> None:
    assert parse_host_port("127.0.0.2:2525", 25) == ("127.0.0.2", 2525)
    assert parse_host_port("127.0.0.2", 25) == ("127.0.0.2", 25)
    assert parse_host_port("[::1]:53", 25) == ("::1", 53)
    with pytest.raises(ValueError):
        parse_host_port("host:99999", 25)


def test_dsn_is_a_delivery_status_report() -> None:
    original = b"Subject: hi\r\nFrom: a@example.test\r\n\r\nbody\r\n"
    message = dsn.build_dsn(
        reporting_mta="mx.example.test",
        sender="a@example.test",
        queue_id="Q1",
        envid="env 1",
        arrival=datetime(2024, 1, 2, tzinfo=UTC),
        recipients=[
            dsn.RecipientReport(
                "b@remote.test",
                "rfc822;B@remote.test",
                dsn.ACTION_FAILED,
                "5.1.1",
                "mx.remote.test",
                "550 5.1.1 unknown",
            )
        ],
        original=original,
        ret_full=True,
    )
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["To"] == "a@example.test"
    assert parsed["Auto-Submitted"] == "auto-replied"
    notification, status, returned = parsed.iter_parts()
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    assert blocks[0]["Reporting-MTA"] == "dns; mx.example.test"
    assert blocks[0]["Original-Envelope-Id"] == "env 1"
    assert blocks[1]["Action"] == "failed"
    assert blocks[1]["Status"] == "5.1.1"
    assert blocks[1]["Remote-MTA"] == "dns; mx.remote.test"
    assert blocks[1]["Original-Recipient"] == "rfc822;B@remote.test"
    assert returned.get_content_type() == "message/rfc822"
    assert b"body" in message
