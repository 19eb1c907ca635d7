"""IDLE (RFC 2177): push mailbox changes until the client sends DONE.

The store's change callback sets `SelectedMailbox.wakeup`, so a delivery is
reported as soon as it is committed, without polling. The wait ends after
`imap.idle_timeout` seconds with a BYE (RFC 2177 §3: clients re-issue IDLE
at least every 29 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib

from garrison.imap.command import Command
from garrison.imap.encoder import Response
from garrison.imap.errors import EndSession, bad
from garrison.imap.reader import LineTooLong
from garrison.imap.session import Session


async def idle(session: Session, command: Command, response: Response) -> str:
    await session.send_continuation(b"+ idling\r\n")
    timeout = session.settings.imap.idle_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    read_done = asyncio.ensure_future(session.reader.read_line())
    try:
        while True:
            selected = session.selected
            waiters: set[asyncio.Future] = {read_done}
            wake = None
            if selected is not None:
                wake = asyncio.ensure_future(selected.wakeup.wait())
                waiters.add(wake)
            try:
                done, _ = await asyncio.wait(
                    waiters,
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                if wake is not None and not wake.done():
                    wake.cancel()
            if read_done in done:
                break
            if not done:
                raise EndSession("IDLE timed out")
            assert selected is not None
            selected.wakeup.clear()
            update = Response()
            session.refresh(update, allow_expunge=True)
            await session.send(update)
        try:
            line = read_done.result()
        except LineTooLong:
            raise bad("Expected DONE") from None
        if line.upper() != b"DONE":
            raise bad("Expected DONE")
        return "IDLE terminated"
    finally:
        if not read_done.done():
            read_done.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_done
