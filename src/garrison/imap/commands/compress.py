"""COMPRESS DEFLATE (RFC 4978).

After the tagged OK, both directions of the connection carry raw DEFLATE
(`garrison.net.deflate`), above TLS when TLS is on. The command table
allows COMPRESS only after authentication, so LOGIN data is never
compressed.
"""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Command, Compress
from garrison.imap.encoder import Response
from garrison.imap.errors import bad, no
from garrison.imap.session import ALREADY_SENT, Session, log
from garrison.net.deflate import DeflateWriter
from garrison.observability.log import event


async def compress(session: Session, command: Command, response: Response):
    args: Compress = command.args
    if args.algorithm != "DEFLATE":
        # RFC 4978: DEFLATE is the only algorithm defined.
        raise bad(f"Unknown compression algorithm {args.algorithm}")
    if isinstance(session.writer, DeflateWriter):
        # RFC 4978: a second COMPRESS gets NO [COMPRESSIONACTIVE].
        raise no("DEFLATE is already active", errors.COMPRESSIONACTIVE)
    session.refresh(response, allow_expunge=True)
    response.status(command.tag, errors.OK, "DEFLATE active")
    await session.send(response)
    # RFC 4978: compression starts right after the tagged OK, in both
    # directions.
    session.writer = DeflateWriter(session.writer)  # type: ignore[assignment]
    session.reader.start_inflate()
    event(log, "compress", session=session.id, algorithm="DEFLATE")
    return ALREADY_SENT
