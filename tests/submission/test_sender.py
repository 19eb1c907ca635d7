"""The envelope sender and the From: header must belong to the login."""

from __future__ import annotations

from garrison.config import ListenerSettings
from tests.conftest import ALICE, BOB
from tests.smtpd.helpers import inbox_messages
from tests.submission.conftest import logged_in, send_message


def message(header_from: str) -> bytes:
    return f"From: {header_from}\r\nSubject: s\r\n\r\nbody\r\n".encode()


async def test_spoofed_sender_rejected(submission_server) -> None:
    async with logged_in(submission_server) as smtp:
        for sender in (BOB, "ceo@elsewhere.example", "", "alice@example.test.evil"):
            reply = await send_message(smtp, sender, [BOB], message(ALICE))
            assert (reply.code, reply.enhanced) == (553, "5.7.1"), sender
        reply = await send_message(smtp, ALICE.upper(), [BOB], message(ALICE))
        assert reply.code == 250
    assert len(inbox_messages(submission_server, BOB)) == 1


async def test_alias_sender_accepted(submission_server) -> None:
    submission_server.directory.add_alias("sales@example.test", ALICE)
    async with logged_in(submission_server) as smtp:
        reply = await send_message(
            smtp, "sales@example.test", [BOB], message("sales@example.test")
        )
        assert reply.code == 250
    async with logged_in(submission_server, user=BOB) as smtp:
        reply = await send_message(smtp, "sales@example.test", [ALICE], message(BOB))
        assert (reply.code, reply.enhanced) == (553, "5.7.1")


async def test_sender_check_can_be_disabled(start_server) -> None:
    listener = ListenerSettings(
        name="submissions",
        protocol="submission",
        port=0,
        tls="implicit",
        check_sender=False,
    )
    server = await start_server([listener])
    async with logged_in(server) as smtp:
        reply = await send_message(smtp, BOB, [BOB], message(BOB))
        assert reply.code == 250


async def test_from_header_checked_when_enabled(start_server) -> None:
    listener = ListenerSettings(
        name="submissions",
        protocol="submission",
        port=0,
        tls="implicit",
        check_from_header=True,
    )
    server = await start_server([listener])
    async with logged_in(server) as smtp:
        for header_from in (
            BOB,
            f"Alice <{ALICE}>, Bob <{BOB}>",
            "undisclosed-recipients:;",
        ):
            reply = await send_message(smtp, ALICE, [BOB], message(header_from))
            assert (reply.code, reply.enhanced) == (550, "5.7.1"), header_from
        reply = await send_message(smtp, ALICE, [BOB], message(f'"Alice A." <{ALICE}>'))
        assert reply.code == 250
    assert len(inbox_messages(server, BOB)) == 1


async def test_from_header_free_by_default(submission_server) -> None:
    async with logged_in(submission_server) as smtp:
        reply = await send_message(smtp, ALICE, [BOB], message(BOB))
        assert reply.code == 250
