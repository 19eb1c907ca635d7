"""Submitted mail for a remote domain leaves through the real outbound queue.

The queue delivers to Postfix's smtp-sink on loopback, found through the
test DNS server (fixtures from tests.queue), and the copy that arrives
there must carry a DKIM signature that dkimpy verifies.
"""

from __future__ import annotations

import dkim

from garrison.config import ListenerSettings
from garrison.dkim import DKIMKeyStore
from tests.conftest import ALICE, RunningServer
from tests.queue.conftest import (  # noqa: F401 - fixtures used by name
    REMOTE_DOMAIN,
    dns_server,
    queue_settings_for,
    remote_zone,
    running,
    smtp_sink,
    wait_until,
)
from tests.submission.conftest import logged_in, send_message

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: someone@remote.test\r\n"
    b"Subject: leaving\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
)


async def test_signed_mail_reaches_remote_server(
    settings,
    dns_server,  # noqa: F811 - the fixture imported above
    smtp_sink,  # noqa: F811 - the fixture imported above
) -> None:
    sink = smtp_sink()
    dns = dns_server(remote_zone())
    chosen = queue_settings_for(settings, dns, sink.port).model_copy(
        update={
            "listeners": [
                ListenerSettings(
                    name="submissions", protocol="submission", port=0, tls="implicit"
                )
            ]
        }
    )
    keys = DKIMKeyStore(chosen.db_path)
    try:
        info = keys.generate("example.test", "ed25519", "s1")
    finally:
        keys.close()

    async with running(chosen) as runner:
        server = RunningServer(runner, chosen)
        async with logged_in(server) as smtp:
            reply = await send_message(
                smtp, ALICE, [f"someone@{REMOTE_DOMAIN}"], MESSAGE
            )
            assert reply.code == 250, reply.text
        await wait_until(sink.messages, what="the message at the remote server")

    received = sink.messages()[0]
    # smtp-sink may store lines with LF; DKIM is defined over CRLF lines.
    received = received.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"DKIM-Signature: v=1; a=ed25519-sha256;" in received

    def dnsfunc(query: bytes, timeout: int = 5) -> bytes:
        assert query.decode().rstrip(".") == info.record_name
        return info.record_value.encode()

    assert dkim.verify(received, dnsfunc=dnsfunc)
