"""DKIM signing of submitted messages before they are stored or queued.

`MessageSigner.sign(envelope, blob)` returns a new blob: the trace header
fields at the top of the original (Return-Path and Received, which the
SMTP server wrote), then the DKIM-Signature field, then the message as the
client sent it. The signing domain (d=) is the domain of the envelope
sender. The SMTP server has already checked that this address belongs to
the authenticated account, so a user can get signatures only for domains
of addresses they own. A domain without a key is delivered unsigned.

The message streams from the blob twice (body hash, then copy), in a
worker thread, so memory stays bounded and the event loop is not blocked
by hashing or by the RSA operation.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from garrison.directory.addresses import AddressError, split_address
from garrison.dkim import DKIMKeyStore, SigningKey, sign_message
from garrison.observability.log import event
from garrison.store import BlobRef, MailStore
from garrison.store.blobs import BlobWriter

if TYPE_CHECKING:
    from garrison.delivery.pipeline import Envelope

log = logging.getLogger("garrison.delivery")

# Largest header section that is signed; a bigger one is rejected.
MAX_HEADER_SIZE = 1024 * 1024
_CHUNK = 256 * 1024
_TRACE_FIELDS = re.compile(
    rb"(?:(?:Return-Path|Received):[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*"
)


class SigningError(Exception):
    """The message cannot be signed; the message says why."""


class MessageSigner:
    """Adds a DKIM-Signature for the envelope sender's domain."""

    def __init__(self, store: MailStore, keys: DKIMKeyStore) -> None:
        self.store = store
        self.keys = keys

    def close(self) -> None:
        self.keys.close()

    async def sign(self, envelope: Envelope, blob: BlobRef) -> BlobRef:
        """Return the signed blob, or `blob` itself when the domain has no key.

        Raises SigningError when the header section exceeds MAX_HEADER_SIZE,
        and OSError when the blob cannot be read or written.
        """
        try:
            _, domain = split_address(envelope.mail_from)
        except AddressError:
            return blob
        key = self.keys.signing_key(domain)
        if key is None:
            event(
                log,
                "dkim_skipped",
                queue_id=envelope.queue_id,
                domain=domain,
                reason="no key",
            )
            return blob

        writer = await asyncio.to_thread(self._write_signed, key, blob)
        try:
            signed = await writer.commit()
        except BaseException:
            writer.abort()
            raise
        event(
            log,
            "dkim_signed",
            queue_id=envelope.queue_id,
            domain=key.domain,
            selector=key.selector,
            algorithm=key.algorithm,
        )
        return signed

    def _write_signed(self, key: SigningKey, blob: BlobRef) -> BlobWriter:
        with self.store.blobs.open_ref(blob) as source:
            prefix = source.read(MAX_HEADER_SIZE + _CHUNK)
            trace_end, header_end, body_start = split_message(prefix)
            header = prefix[trace_end:header_end]

            def body() -> Iterator[bytes]:
                yield prefix[body_start:]
                while chunk := source.read(_CHUNK):
                    yield chunk

            signature = sign_message(key, header, body())

            writer = self.store.blobs.create()
            try:
                writer.write(prefix[:trace_end])
                writer.write(signature)
                writer.write(prefix[trace_end:])
                source.seek(len(prefix))
                while chunk := source.read(_CHUNK):
                    writer.write(chunk)
            except BaseException:
                writer.abort()
                raise
        return writer


def split_message(prefix: bytes) -> tuple[int, int, int]:
    """Locate the trace fields, the header section and the body in `prefix`.

    Returns (end of the leading trace fields, end of the header section,
    start of the body). The header section ends after the CRLF of its last
    field; the body starts after the empty line. A message without an empty
    line is all header. Raises SigningError when the header section does not
    end within MAX_HEADER_SIZE.
    """
    match = _TRACE_FIELDS.match(prefix)
    trace_end = match.end() if match else 0
    if prefix.startswith(b"\r\n", trace_end):
        return trace_end, trace_end, trace_end + 2
    blank = prefix.find(b"\r\n\r\n", trace_end)
    if blank >= 0 and blank - trace_end <= MAX_HEADER_SIZE:
        return trace_end, blank + 2, blank + 4
    if blank < 0 and len(prefix) - trace_end <= MAX_HEADER_SIZE:
        return trace_end, len(prefix), len(prefix)
    raise SigningError(
        f"message header section larger than {MAX_HEADER_SIZE} bytes"
    )
