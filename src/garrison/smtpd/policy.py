"""Submission and relay policy: who may send what, from where, how much.

Each check returns None when the command may proceed, or the reply to
reject it with. The rules come from the listener's settings:

- `require_auth`: MAIL needs a prior AUTH (RFC 4954 §6, 530 5.7.0).
- `check_sender`: an authenticated client's MAIL FROM must be its login
  address or an alias that delivers to it (553 5.7.1). The null sender
  counts as someone else's address.
- `check_from_header`: the same rule for every From: header address, after
  DATA (550 5.7.1).
- `[submission]` hourly limits per account, from the shared sending log.
- `relay`: a recipient outside the local domains is accepted only when one
  of the listed modes allows it (otherwise 554 5.7.1, as before). No mode
  lets an unauthenticated client outside `relay_networks` relay.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import cache

from garrison.directory import Account, Directory
from garrison.directory.addresses import AddressError, normalize_address
from garrison.message.addresses import parse_address_list
from garrison.message.headers import parse_header_block
from garrison.observability.log import format_event
from garrison.smtp import replies
from garrison.smtp.replies import Reply
from garrison.smtpd.session import Session
from garrison.store import BlobRef

log = logging.getLogger("garrison.smtpd")

# The part of a blob read for the From: check; the trace fields come first.
_HEADER_PREFIX = 256 * 1024


def may_send_as(directory: Directory, account: Account, address: str) -> bool:
    """Return whether `account` owns `address`: its own, or an alias reaching it."""
    try:
        normalized = normalize_address(address)
    except AddressError:
        return False
    if normalized == account.address:
        return True
    resolution = directory.resolve_recipient(normalized)
    return resolution.kind == "local" and any(
        found.id == account.id for found in resolution.accounts
    )


def check_mail(session: Session, sender: str) -> Reply | None:
    """Check MAIL FROM: authentication, sender ownership and the message limit."""
    listener = session.server.listener
    account = session.connection.account
    if account is None:
        # RFC 4954 §6: 530 when the server requires authentication.
        return replies.AUTH_REQUIRED if listener.require_auth else None

    if listener.check_sender and not may_send_as(
        session.server.directory, account, sender
    ):
        return replies.SENDER_NOT_OWNED

    limit = session.server.settings.submission.max_messages_per_hour
    if limit and session.server.sending.counts(account.id).messages >= limit:
        return replies.MESSAGE_RATE_EXCEEDED.format(limit=limit)
    return None


def check_recipient_limit(session: Session) -> Reply | None:
    """Check the account's hourly recipient limit before one more RCPT."""
    account = session.connection.account
    limit = session.server.settings.submission.max_recipients_per_hour
    if account is None or not limit:
        return None
    sent = session.server.sending.counts(account.id).recipients
    if sent + len(session.transaction.recipients) >= limit:
        return replies.RECIPIENT_RATE_EXCEEDED.format(limit=limit)
    return None


@cache
def _networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def _in_networks(client_ip: str, cidrs: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(tuple(cidrs)))


def relay_permitted(session: Session) -> bool:
    """Return whether one of the listener's relay modes lets this client relay."""
    listener = session.server.listener
    account = session.connection.account
    for mode in listener.relay:
        if mode == "networks" and _in_networks(
            session.connection.client_ip, listener.relay_networks
        ):
            return True
        if mode == "auth" and account is not None:
            return True
        if mode == "auth_own_sender" and account is not None:
            try:
                if normalize_address(session.transaction.sender) == account.address:
                    return True
            except AddressError:
                continue
    return False


def check_relay(session: Session) -> Reply | None:
    """Check a recipient outside the local domains (RFC 5321 §3.6.1: no open relay)."""
    if not relay_permitted(session):
        return replies.RELAY_DENIED
    if session.server.delivery.outbound is None:
        return replies.RELAY_NOT_AVAILABLE
    return None


def check_from_header(session: Session, blob: BlobRef) -> Reply | None:
    """Check the From: header of a committed message against the login."""
    account = session.connection.account
    if account is None or not session.server.listener.check_from_header:
        return None
    if blob.data is not None:
        prefix = blob.data[:_HEADER_PREFIX]
    else:
        prefix = session.server.store.blobs.read_prefix(blob.blob_id, _HEADER_PREFIX)
    end = prefix.find(b"\r\n\r\n")
    header = prefix if end < 0 else prefix[: end + 2]

    addresses = [
        address
        for field in parse_header_block(header)
        if field.name.lower() == "from"
        for address in parse_address_list(field.value)
        if address.mailbox is not None and address.host is not None
    ]
    if not addresses:
        return replies.FROM_HEADER_NOT_OWNED
    directory = session.server.directory
    for address in addresses:
        text = (address.mailbox + b"@" + address.host).decode("utf-8", "replace")
        if not may_send_as(directory, account, text):
            return replies.FROM_HEADER_NOT_OWNED
    return None


async def record_submission(
    session: Session, account: Account, recipients: int
) -> None:
    """Count a delivered message against the account's hourly limits.

    The message is already delivered, so a failure here is logged and does
    not change the reply; the message is then missing from the counts.
    """
    try:
        await session.server.sending.record(account.id, recipients)
    except Exception:
        log.error(
            format_event(
                "sending_log_failed",
                {
                    "session": session.connection.session_id,
                    "queue_id": session.transaction.queue_id,
                    "user": account.address,
                },
            ),
            exc_info=True,
        )
