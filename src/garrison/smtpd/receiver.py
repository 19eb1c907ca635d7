"""DATA and BDAT: receive message content into a blob and deliver it.

Content streams to a blob (`store.blobs.create()`) chunk by chunk, so a
message never sits whole in memory. The blob starts with the trace
headers (Return-Path and Received). A message that breaks a limit is read
to its end, so the session stays in step with the client, and is then
rejected with its blob aborted. Only after the blob is committed and
`delivery.deliver` has returned does the client get `250`.

Decision on BDAT content (RFC 3030): without BINARYMIME, which is not
advertised, BDAT carries a 7bit or 8bitmime message. Such a message is
made of CRLF-terminated lines, so BDAT content gets the same bare CR/LF
and line length checks as DATA. The check also keeps a message with
bare line endings from reaching a later hop that might re-send it with
DATA, where bare line endings enable SMTP smuggling.
"""

from __future__ import annotations

import asyncio
import logging

from garrison.delivery import DeliveryError, Envelope
from garrison.observability.log import event
from garrison.message.hops import HEADER_PREFIX, count_received
from garrison.smtp import replies
from garrison.smtp.data import ContentError, DataDecoder, LineChecker
from garrison.smtp.replies import Reply
from garrison.smtpd import policy
from garrison.smtpd.connection import CHUNK_SIZE, ConnectionClosed
from garrison.smtpd.session import Session, SessionState
from garrison.smtpd.trace import received_protocol, trace_headers
from garrison.store import BlobRef

log = logging.getLogger("garrison.smtpd")


async def handle_data(session: Session, argument: str) -> None:
    """DATA: read dot-stuffed content up to CRLF.CRLF (RFC 5321 §4.1.1.4)."""
    if argument:
        session.reject("data", replies.SYNTAX_ERROR)
        return

    limits = session.server.settings.smtp
    transaction = session.transaction
    decoder = DataDecoder(limits.max_line_length, limits.max_message_size)
    _start_blob(session)
    assert transaction.blob is not None

    session.reply(replies.START_DATA)
    await session.io.flush()

    write_error: OSError | None = None
    session.phase = "data"
    _measure_data_rate(session)
    try:
        while not decoder.done:
            chunk = await session.io.read_chunk(CHUNK_SIZE, limits.data_timeout)
            content = decoder.feed(chunk)
            if content and write_error is None:
                try:
                    transaction.blob.write(content)
                except OSError as exc:
                    # Disk full or similar: keep reading to the end of the
                    # message so the session stays in step, then reply 451.
                    write_error = exc
    except BaseException as exc:
        _abandon_content(session, exc)
        raise
    finally:
        session.io.stop_data_rate()
        session.phase = "busy"

    # RFC 2920 §3.1: commands may follow the end of data in the same packet.
    session.io.unread(decoder.trailing)
    if write_error is not None:
        _report_write_error(session, write_error)
        return
    if decoder.error is not None:
        session.reject("data", _content_reply(session, decoder.error))
        transaction.reset()
        return
    await _finish_message(session)


async def handle_bdat(session: Session, argument: str) -> None:
    """BDAT size [LAST]: receive one chunk of exactly `size` octets (RFC 3030 §2).

    RFC 3030 §2: the server reads the whole chunk even when it rejects the
    command, so this handler runs in every state and checks the order
    itself after parsing the size.
    """
    words = argument.split(" ")
    if (
        not 1 <= len(words) <= 2
        or not words[0].isdigit()
        or len(words[0]) > 20
        or (len(words) == 2 and words[1].upper() != "LAST")
    ):
        # Without a valid size the chunk cannot be skipped: its bytes would
        # be read as commands. End the session instead.
        session.reject("bdat", replies.SYNTAX_ERROR)
        session.closing = True
        return
    size = int(words[0])
    last = len(words) == 2

    failure = _bdat_order_error(session)
    if failure is not None:
        await _discard(session, size)
        session.reject("bdat", failure)
        return

    transaction = session.transaction
    if transaction.blob is None:
        limits = session.server.settings.smtp
        _start_blob(session)
        transaction.checker = LineChecker(
            limits.max_line_length, limits.max_message_size
        )
        transaction.chunking = True
    await _receive_chunk(session, size)

    checker = transaction.checker
    assert checker is not None
    if last:
        checker.finish()
    if checker.error is not None:
        session.reject("bdat", _content_reply(session, checker.error))
        if last:
            transaction.reset()
        else:
            # RFC 3030 §2: a failed chunk fails the transaction, so later
            # chunks get 503 until RSET.
            transaction.chunking_failed = True
            if transaction.blob is not None:
                transaction.blob.abort()
        return

    if last:
        await _finish_message(session)
    else:
        session.reply(replies.CHUNK_OK.format(size=size))


def _bdat_order_error(session: Session) -> Reply | None:
    state = session.state
    if state is SessionState.CONNECTED:
        return replies.NEED_EHLO
    if state is SessionState.READY:
        return replies.NEED_MAIL
    if state is SessionState.MAIL:
        return replies.NEED_RCPT
    if session.transaction.chunking_failed:
        return replies.BDAT_FAILED
    return None


async def _receive_chunk(session: Session, size: int) -> None:
    transaction = session.transaction
    checker = transaction.checker
    blob = transaction.blob
    assert checker is not None and blob is not None
    timeout = session.server.settings.smtp.data_timeout

    session.phase = "data"
    _measure_data_rate(session)
    try:
        remaining = size
        while remaining:
            chunk = await session.io.read_chunk(remaining, timeout)
            remaining -= len(chunk)
            checker.feed(chunk)
            if checker.error is None:
                blob.write(chunk)
    except BaseException as exc:
        _abandon_content(session, exc)
        raise
    finally:
        session.io.stop_data_rate()
        session.phase = "busy"


async def _discard(session: Session, size: int) -> None:
    timeout = session.server.settings.smtp.data_timeout
    remaining = size
    session.phase = "data"
    _measure_data_rate(session)
    try:
        while remaining:
            remaining -= len(await session.io.read_chunk(remaining, timeout))
    finally:
        session.io.stop_data_rate()
        session.phase = "busy"


def _measure_data_rate(session: Session) -> None:
    limits = session.server.settings.smtp
    session.io.measure_data_rate(limits.min_data_rate, limits.data_rate_window)


def _abandon_content(session: Session, error: BaseException) -> None:
    """Drop the transaction after content reading stopped early.

    A timeout, a disconnect or shutdown ends the session anyway. After any
    other error the position in the input is unknown, so the session must
    end instead of reading the rest of the message as commands.
    """
    session.transaction.reset()
    if not isinstance(error, TimeoutError | ConnectionClosed | asyncio.CancelledError):
        session.closing = True


def _report_write_error(session: Session, error: OSError) -> None:
    event(
        log,
        "blob_write_failed",
        logging.ERROR,
        session=session.connection.session_id,
        queue_id=session.transaction.queue_id,
        error=error,
    )
    session.reply(replies.LOCAL_ERROR)
    session.transaction.reset()


def _start_blob(session: Session) -> None:
    """Create the transaction's blob and write the trace headers into it."""
    server = session.server
    connection = session.connection
    transaction = session.transaction
    tls_comment = ""
    if connection.tls:
        tls_comment = (
            f"using {connection.tls_version} with cipher {connection.tls_cipher}"
            f" ({connection.tls_bits} bits)"
        )

    blob = server.store.blobs.create()
    transaction.blob = blob
    blob.write(
        trace_headers(
            mail_from=transaction.sender,
            helo=connection.helo or "unknown",
            client_ip=connection.client_ip,
            hostname=server.hostname,
            protocol=received_protocol(
                connection.esmtp, connection.tls, connection.account is not None
            ),
            tls_comment=tls_comment,
            queue_id=transaction.queue_id,
            recipients=[recipient.address for recipient in transaction.recipients],
        )
    )


async def _finish_message(session: Session) -> None:
    """Commit the blob, hand the message to delivery and reply with the outcome."""
    transaction = session.transaction
    blob = transaction.blob
    assert blob is not None
    connection = session.connection

    session.phase = "delivering"
    try:
        # The delivery pipeline writes the file of a small message once it
        # has its final header fields, so only that copy is synced to disk.
        blob_ref = await blob.commit(durable=False)
        transaction.blob = None
        if _hop_count(session, blob_ref) > session.server.settings.queue.max_hops:
            # RFC 5321 §6.3: a message with too many Received fields loops.
            session.reject("data", replies.MAIL_LOOP)
            transaction.reset()
            return
        refusal = policy.check_from_header(session, blob_ref)
        if refusal is not None:
            session.reject("data", refusal)
            transaction.reset()
            return
        account = connection.account
        envelope = Envelope(
            queue_id=transaction.queue_id,
            mail_from=transaction.sender,
            recipients=transaction.recipients,
            helo=connection.helo or "",
            client_ip=connection.client_ip,
            params=dict(transaction.parameters),
            authenticated_as=account.address if account is not None else "",
        )
        await session.server.delivery.deliver(envelope, blob_ref)
        if account is not None:
            recipients = len(envelope.recipients)
            await policy.record_submission(session, account, recipients)
    except DeliveryError as exc:
        # A large message's file stays until the blob collector removes it;
        # a small one was never written.
        session.reject("delivery", Reply(exc.code, exc.enhanced, exc.text))
        transaction.reset()
        return
    except OSError as exc:
        event(
            log,
            "blob_commit_failed",
            logging.ERROR,
            session=connection.session_id,
            queue_id=transaction.queue_id,
            error=exc,
        )
        session.reply(replies.LOCAL_ERROR)
        transaction.reset()
        return
    finally:
        session.phase = "busy"

    connection.messages += 1
    event(
        log,
        "queued",
        session=connection.session_id,
        queue_id=transaction.queue_id,
        size=blob_ref.size,
        nrcpt=len(transaction.recipients),
        **{"from": f"<{transaction.sender}>"},
    )
    session.reply(replies.QUEUED.format(queue_id=transaction.queue_id))
    transaction.reset()


def _hop_count(session: Session, blob_ref: BlobRef) -> int:
    if blob_ref.data is not None:
        return count_received(blob_ref.data[:HEADER_PREFIX])
    return count_received(
        session.server.store.blobs.read_prefix(blob_ref.blob_id, HEADER_PREFIX)
    )


def _content_reply(session: Session, error: ContentError) -> Reply:
    if error is ContentError.TOO_BIG:
        return replies.MESSAGE_TOO_BIG
    if error is ContentError.LINE_TOO_LONG:
        return replies.DATA_LINE_TOO_LONG.format(
            limit=session.server.settings.smtp.max_line_length
        )
    return replies.BARE_LINE_ENDING
