"""Bad input, limits, autologout and shutdown."""

from __future__ import annotations

import asyncio

from garrison.config import POP3Settings
from garrison.pop3 import replies
from garrison.pop3.session import MAX_ERRORS
from tests.pop3.conftest import PASSWORD, RunningPOP3, StartPOP3, message


async def test_unknown_command(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.err("XYZZ") == replies.UNKNOWN_COMMAND
    assert await client.err("APOP alice 0123456789abcdef") == replies.UNKNOWN_COMMAND
    await client.ok("CAPA")
    await client.read_lines()
    await client.close()


async def test_malformed_lines(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    for line in (b"", b"X", b"TOOLONG", b"USER a\x00b", b"\xff\xfe\xfd"):
        reply = await client.err(line)
        assert reply.startswith("-ERR invalid command line: "), reply
    await client.close()


async def test_wrong_argument_count(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.err("USER") == replies.INVALID_ARGUMENTS.format(
        command="USER", detail="expected at least 1 arguments"
    )
    assert await client.err("USER a b") == replies.INVALID_ARGUMENTS.format(
        command="USER", detail="expected at most 1 arguments"
    )
    assert await client.err("CAPA x") == replies.INVALID_ARGUMENTS.format(
        command="CAPA", detail="no arguments are allowed"
    )
    assert await client.err("PASS") == replies.INVALID_ARGUMENTS.format(
        command="PASS", detail="an argument is required"
    )
    await client.close()


async def test_line_over_255_octets_rejected(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    # 253 characters plus CRLF is exactly 255 octets and still accepted.
    assert await client.command("USER " + "a" * 248) == replies.USER_ACCEPTED
    reply = await client.err("USER " + "a" * 249)
    assert reply == replies.LINE_TOO_LONG.format(limit=255)
    await client.ok("CAPA")
    await client.read_lines()
    await client.close()


async def test_line_without_ending_past_buffer_closes(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    # The test server uses asyncio's default stream buffer of 64 KiB.
    client.writer.write(b"A" * (256 * 1024))
    reply = await client.read_line()
    assert reply == replies.LINE_TOO_LONG.format(limit=255)
    assert await client.at_eof()


async def test_too_many_errors_close_session(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    for _ in range(MAX_ERRORS - 1):
        await client.err("BOGU")
    assert await client.err("BOGU") == replies.UNKNOWN_COMMAND
    assert await client.read_line() == replies.TOO_MANY_ERRORS
    assert await client.at_eof()


async def test_autologout_closes_idle_session(start_pop3: StartPOP3, settings) -> None:
    quick = settings.model_copy(update={"pop3": POP3Settings(autologout=0.3)})
    running = await start_pop3(quick)
    await running.deliver(message("kept"))
    client = await running.login()
    await client.ok("DELE 1")
    assert await client.read_line() == replies.AUTOLOGOUT
    assert await client.at_eof()
    # RFC 1939 §3: the autologout does not enter the UPDATE state.
    assert len(running.services.store.uids(running.inbox_id())) == 1


async def test_shutdown_closes_idle_sessions(start_pop3: StartPOP3) -> None:
    running = await start_pop3()
    await running.deliver(message("kept"))
    idle = await running.login()
    await idle.ok("DELE 1")
    fresh = await running.connect()

    await asyncio.wait_for(running.protocol.shutdown(grace=2.0), 5.0)

    for client in (idle, fresh):
        assert await client.read_line() == replies.SHUTTING_DOWN
        assert await client.at_eof()
    assert len(running.services.store.uids(running.inbox_id())) == 1


async def test_connection_after_shutdown_refused(start_pop3: StartPOP3) -> None:
    running = await start_pop3()
    await running.protocol.shutdown()
    from tests.pop3.dialogue import POP3Dialogue

    client = await POP3Dialogue.connect(running.port)
    assert await client.read_line() == replies.SHUTTING_DOWN
    assert await client.at_eof()


async def test_password_never_logged(pop3: RunningPOP3, caplog) -> None:
    caplog.set_level("DEBUG", logger="garrison")
    client = await pop3.connect()
    await client.ok("USER alice@example.test")
    await client.err("PASS not-the-password-4711")
    await client.log_in("alice@example.test", PASSWORD)
    await client.ok("QUIT")
    await client.at_eof()
    text = caplog.text
    assert "not-the-password-4711" not in text
    assert PASSWORD not in text
    assert "event=auth" in text
    assert "result=failed" in text
    assert "event=disconnect" in text
