"""AUTHORIZATION state: greeting, CAPA, USER/PASS, AUTH PLAIN, QUIT."""

from __future__ import annotations

import base64

from garrison.config import TLSSettings
from garrison.pop3 import replies
from tests.pop3.conftest import ALICE, PASSWORD, RunningPOP3, StartPOP3, message
from tests.pop3.dialogue import POP3Dialogue


def plain(user: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


async def test_greeting_names_the_host(pop3: RunningPOP3) -> None:
    client = await POP3Dialogue.connect(pop3.port)
    greeting = await client.read_line()
    assert greeting == replies.GREETING.format(hostname="mail.example.test")
    await client.close()


async def test_capa_on_plain_connection_offers_stls(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    _, capabilities = await client.multiline("CAPA")
    assert capabilities == [
        "TOP",
        "USER",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "SASL PLAIN",
        "STLS",
        "IMPLEMENTATION Garrison",
    ]
    await client.close()


async def test_capa_after_login_omits_stls(pop3: RunningPOP3) -> None:
    client = await pop3.login()
    _, capabilities = await client.multiline("CAPA")
    assert "STLS" not in capabilities
    assert "UIDL" in capabilities
    await client.close()


async def test_capa_without_tls_listener_omits_stls(start_pop3: StartPOP3) -> None:
    running = await start_pop3(tls="none")
    client = await running.connect()
    _, capabilities = await client.multiline("CAPA")
    assert "STLS" not in capabilities
    await client.err("STLS")
    await client.close()


async def test_user_pass_login_reports_maildrop(pop3: RunningPOP3) -> None:
    await pop3.deliver(message("one"))
    size = len(message("one"))
    client = await pop3.connect()
    assert await client.ok(f"USER {ALICE}") == replies.USER_ACCEPTED
    reply = await client.ok(f"PASS {PASSWORD}")
    assert reply == replies.MAILDROP_READY.format(count=1, octets=size)
    await client.ok("STAT")
    await client.close()


async def test_user_name_is_case_insensitive(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.log_in(ALICE.upper(), PASSWORD)
    await client.close()


async def test_wrong_password_gets_auth_code(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.ok(f"USER {ALICE}")
    assert await client.err("PASS wrong-password") == replies.AUTH_FAILED
    # A failed PASS clears the user name, so USER must come again.
    assert await client.err(f"PASS {PASSWORD}") == replies.PASS_WITHOUT_USER
    await client.err("STAT")
    await client.close()


async def test_unknown_user_same_reply_as_wrong_password(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.ok("USER nobody@example.test") == replies.USER_ACCEPTED
    assert await client.err(f"PASS {PASSWORD}") == replies.AUTH_FAILED
    await client.close()


async def test_pass_without_user(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.err(f"PASS {PASSWORD}") == replies.PASS_WITHOUT_USER
    await client.close()


async def test_pass_keeps_spaces_in_password(pop3: RunningPOP3) -> None:
    pop3.services.directory.set_password(ALICE, " two  words ")
    client = await pop3.connect()
    await client.ok(f"USER {ALICE}")
    await client.ok("PASS  two  words ")
    await client.close()


async def test_third_failed_login_closes_session(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    for _ in range(2):
        await client.ok(f"USER {ALICE}")
        assert await client.err("PASS wrong") == replies.AUTH_FAILED
    await client.ok(f"USER {ALICE}")
    assert await client.err("PASS wrong") == replies.AUTH_FAILED
    assert await client.at_eof()


async def test_failed_login_is_delayed(start_pop3: StartPOP3) -> None:
    import time

    running = await start_pop3(auth_failure_delay=0.3)
    client = await running.connect()
    await client.ok(f"USER {ALICE}")
    started = time.monotonic()
    await client.err("PASS wrong")
    assert time.monotonic() - started >= 0.3
    await client.close()


async def test_auth_plain_initial_response(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    reply = await client.ok(f"AUTH PLAIN {plain(ALICE, PASSWORD)}")
    assert reply.startswith("+OK maildrop has 0 messages")
    await client.ok("STAT")
    await client.close()


async def test_auth_plain_with_continuation(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    client.send("AUTH PLAIN")
    assert await client.reader.readexactly(4) == b"+ \r\n"
    await client.ok(plain(ALICE, PASSWORD))
    await client.ok("NOOP")
    await client.close()


async def test_auth_plain_mechanism_is_case_insensitive(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.ok(f"AUTH plain {plain(ALICE, PASSWORD)}")
    await client.close()


async def test_auth_plain_matching_authzid(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.ok(f"AUTH PLAIN {plain(ALICE, PASSWORD, authzid=ALICE)}")
    await client.close()


async def test_auth_plain_other_authzid_rejected(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    reply = await client.err(
        f"AUTH PLAIN {plain(ALICE, PASSWORD, authzid='bob@example.test')}"
    )
    assert reply == replies.AUTH_AUTHZID_MISMATCH
    await client.close()


async def test_auth_cancelled_with_star(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.command("AUTH PLAIN") == replies.AUTH_CONTINUE
    assert await client.err("*") == replies.AUTH_CANCELLED
    await client.ok("CAPA")
    await client.read_lines()
    await client.close()


async def test_auth_invalid_base64(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.err("AUTH PLAIN not*base64") == replies.AUTH_INVALID_BASE64
    await client.close()


async def test_auth_empty_initial_response_fails(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.err("AUTH PLAIN =") == replies.AUTH_MALFORMED
    await client.close()


async def test_auth_wrong_password(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert (
        await client.err(f"AUTH PLAIN {plain(ALICE, 'wrong')}") == replies.AUTH_FAILED
    )
    await client.close()


async def test_auth_unsupported_mechanism(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    reply = await client.err("AUTH CRAM-MD5")
    assert reply == replies.AUTH_UNSUPPORTED_MECHANISM.format(mechanism="CRAM-MD5")
    await client.close()


async def test_bare_auth_lists_mechanisms(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    status, mechanisms = await client.multiline("AUTH")
    assert status == replies.AUTH_MECHANISMS_FOLLOW
    assert mechanisms == ["PLAIN"]
    await client.close()


async def test_sasl_response_line_limit(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    await client.command("AUTH PLAIN")
    reply = await client.err("A" * 13000)
    assert reply == replies.AUTH_LINE_TOO_LONG.format(limit=12288)
    await client.ok("CAPA")
    await client.read_lines()
    await client.close()


async def test_plaintext_login_rejected_without_tls(
    start_pop3: StartPOP3, settings
) -> None:
    strict = settings.model_copy(
        update={
            "tls": TLSSettings(
                **{
                    **settings.tls.model_dump(),
                    "allow_plaintext_auth_from_loopback": False,
                }
            )
        }
    )
    running = await start_pop3(strict)
    client = await running.connect()
    assert await client.err(f"USER {ALICE}", "[AUTH]") == replies.PLAINTEXT_DISALLOWED
    reply = await client.err(f"AUTH PLAIN {plain(ALICE, PASSWORD)}", "[AUTH]")
    assert reply == replies.PLAINTEXT_DISALLOWED

    await client.ok("STLS")
    await client.start_tls(running.client_context())
    await client.log_in(ALICE, PASSWORD)
    await client.close()


async def test_quit_in_authorization_state(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    assert await client.ok("QUIT") == replies.BYE.format(hostname="mail.example.test")
    assert await client.at_eof()


async def test_transaction_commands_need_login(pop3: RunningPOP3) -> None:
    client = await pop3.connect()
    for command in (
        "STAT",
        "LIST",
        "RETR 1",
        "TOP 1 1",
        "DELE 1",
        "RSET",
        "NOOP",
        "UIDL",
    ):
        keyword = command.split()[0]
        reply = await client.err(command)
        assert reply == replies.WRONG_STATE.format(
            command=keyword, state="AUTHORIZATION"
        )
    await client.close()


async def test_authorization_commands_rejected_after_login(pop3: RunningPOP3) -> None:
    client = await pop3.login()
    for command in (f"USER {ALICE}", f"PASS {PASSWORD}", "AUTH PLAIN", "STLS"):
        keyword = command.split()[0]
        reply = await client.err(command)
        assert reply == replies.WRONG_STATE.format(command=keyword, state="TRANSACTION")
    await client.close()
